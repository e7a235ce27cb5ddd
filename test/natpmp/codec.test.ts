import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  encodeExternalAddressRequest,
  encodeMappingRequest,
  encodeNatPmpResponse,
  encodeUnmapRequest,
  parseNatPmpResponse,
  resultCodeName,
  type NatPmpResponse,
} from '../../src/natpmp/codec.ts';

const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString('hex');
const bytes = (h: string) => Uint8Array.from(Buffer.from(h.replace(/\s+/g, ''), 'hex'));

describe('NAT-PMP requests (RFC 6886 §3.2–3.4)', () => {
  it('should encode the external address request as version 0, opcode 0', () => {
    expect(hex(encodeExternalAddressRequest())).toBe('0000');
  });

  it('should encode a UDP mapping request: version, opcode 1, reserved, internal port, suggested port, lifetime', () => {
    expect(
      hex(encodeMappingRequest({ protocol: 'UDP', internalPort: 5060, externalPort: 5061, lifetimeSeconds: 7200 })),
    ).toBe('00 01 0000 13c4 13c5 00001c20'.replace(/ /g, ''));
  });

  it('should encode a TCP mapping request with opcode 2 and a lifetime using all 32 bits', () => {
    expect(
      hex(encodeMappingRequest({ protocol: 'TCP', internalPort: 65535, externalPort: 1, lifetimeSeconds: 0xfffffffe })),
    ).toBe('00020000ffff0001fffffffe');
  });

  it('should encode a deletion with suggested external port 0 and lifetime 0', () => {
    expect(hex(encodeUnmapRequest('UDP', 16384))).toBe('000100004000000000000000');
  });
});

describe('parseNatPmpResponse', () => {
  it('should read an external address response (as miniupnpd 2.3.1 sends it)', () => {
    expect(parseNatPmpResponse(bytes('0080 0000 0000114b 0b000001'))).toEqual({
      ok: true,
      value: { kind: 'externalAddress', epochSeconds: 0x114b, externalAddress: '11.0.0.1' },
    });
  });

  it('should read a UDP mapping response with the granted port and lifetime', () => {
    expect(parseNatPmpResponse(bytes('0081 0000 0000120c 1b58 1b59 000f423f'))).toEqual({
      ok: true,
      value: {
        kind: 'mapping',
        protocol: 'UDP',
        epochSeconds: 0x120c,
        internalPort: 7000,
        externalPort: 7001,
        lifetimeSeconds: 999999,
      },
    });
  });

  it('should read a TCP mapping response', () => {
    expect(parseNatPmpResponse(bytes('0082 0000 00000001 1b5a 1b5a 0000003c'))).toMatchObject({
      ok: true,
      value: { protocol: 'TCP', internalPort: 7002, lifetimeSeconds: 60 },
    });
  });

  const refusals = [
    [1, 'UNSUPPORTED_VERSION'],
    [2, 'NOT_AUTHORIZED'],
    [3, 'NETWORK_FAILURE'],
    [4, 'OUT_OF_RESOURCES'],
    [5, 'UNSUPPORTED_OPCODE'],
    [6, 'UNKNOWN_RESULT'],
    [0xffff, 'UNKNOWN_RESULT'],
  ] as const;
  for (const [resultCode, name] of refusals) {
    it(`should name result code ${resultCode} ${name}, with the opcode it answers`, () => {
      const code = resultCode.toString(16).padStart(4, '0');
      const parsed = parseNatPmpResponse(bytes(`0081 ${code} 0000120c 0050 0050 00000e10`));
      expect(parsed).toEqual({
        ok: false,
        error: { code: name, message: expect.stringContaining(name), opcode: 129, resultCode },
      });
    });
  }

  it('should read an 8-byte error response (miniupnpd answers an unknown opcode so)', () => {
    expect(parseNatPmpResponse(bytes('0087 0005 0000120c'))).toMatchObject({
      ok: false,
      error: { code: 'UNSUPPORTED_OPCODE', opcode: 0x87, resultCode: 5 },
    });
  });

  it('should refuse truncated responses', () => {
    for (const raw of [
      '',
      '00',
      '008000',
      '0081 0002 0000',
      '0080 0000 0000114b 0b0000',
      '0081 0000 0000120c 1b58 1b59 000f42',
    ]) {
      expect(parseNatPmpResponse(bytes(raw))).toMatchObject({ ok: false, error: { code: 'TRUNCATED' } });
    }
  });

  it('should refuse another version, naming PCP for version 2', () => {
    expect(parseNatPmpResponse(bytes('0280 0000 0000114b 0b000001'))).toEqual({
      ok: false,
      error: { code: 'BAD_VERSION', message: expect.stringContaining('PCP') },
    });
  });

  it('should refuse a request (no response bit) and an undefined response opcode', () => {
    expect(parseNatPmpResponse(bytes('0001 0000 13c4 13c4 00000e10'))).toMatchObject({
      ok: false,
      error: { code: 'NOT_A_RESPONSE' },
    });
    expect(parseNatPmpResponse(bytes('0083 0000 0000120c 1b58 1b59 000f423f'))).toMatchObject({
      ok: false,
      error: { code: 'UNKNOWN_OPCODE' },
    });
  });

  it('should never throw, whatever the bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 40 }), fc.nat(8), (raw, offset) => {
        // Also from an offset into a larger buffer, as Buffers from a socket pool are.
        const shifted = new Uint8Array(raw.length + offset);
        shifted.set(raw, offset);
        const parsed = parseNatPmpResponse(shifted.subarray(offset));
        expect(parsed).toEqual(parseNatPmpResponse(raw));
        expect(typeof parsed.ok).toBe('boolean');
      }),
    );
  });
});

const port = fc.integer({ min: 0, max: 65535 });
const u32 = fc.nat({ max: 0xffff_ffff });
const response: fc.Arbitrary<NatPmpResponse> = fc.oneof(
  fc.record({ kind: fc.constant('externalAddress' as const), epochSeconds: u32, externalAddress: fc.ipV4() }),
  fc.record({
    kind: fc.constant('mapping' as const),
    protocol: fc.constantFrom('UDP' as const, 'TCP' as const),
    epochSeconds: u32,
    internalPort: port,
    externalPort: port,
    lifetimeSeconds: u32,
  }),
);

describe('encodeNatPmpResponse ∘ parseNatPmpResponse', () => {
  it('should give back every successful response', () => {
    fc.assert(
      fc.property(response, (r) => {
        expect(parseNatPmpResponse(encodeNatPmpResponse(r))).toEqual({ ok: true, value: r });
      }),
    );
  });

  it('should give back the refusal, named, with the opcode of every refused response', () => {
    fc.assert(
      fc.property(response, fc.integer({ min: 1, max: 0xffff }), (r, resultCode) => {
        const opcode = r.kind === 'externalAddress' ? 128 : r.protocol === 'UDP' ? 129 : 130;
        expect(parseNatPmpResponse(encodeNatPmpResponse(r, resultCode))).toMatchObject({
          ok: false,
          error: { code: resultCodeName(resultCode), opcode, resultCode },
        });
      }),
    );
  });

  it('should give back the raw bytes of every well-formed response (serialize ∘ parse)', () => {
    const raw = fc.oneof(
      fc.tuple(u32, fc.uint8Array({ minLength: 4, maxLength: 4 })).map(([epoch, ip]) => {
        const b = new Uint8Array(12);
        new DataView(b.buffer).setUint32(4, epoch);
        b[1] = 128;
        b.set(ip, 8);
        return b;
      }),
      fc
        .tuple(fc.constantFrom(129, 130), fc.uint8Array({ minLength: 12, maxLength: 12 }))
        .map(([op, rest]) => Uint8Array.of(0, op, 0, 0, ...rest)),
    );
    fc.assert(
      fc.property(raw, (b) => {
        const parsed = parseNatPmpResponse(b);
        expect(parsed.ok).toBe(true);
        if (parsed.ok) expect(hex(encodeNatPmpResponse(parsed.value))).toBe(hex(b));
      }),
    );
  });
});
