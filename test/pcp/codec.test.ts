import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  decodePcpResponse,
  encodeAnnounceRequest,
  encodeMapRequest,
  encodePcpResponse,
  resultCodeName,
  type MapRequest,
  type PcpResponse,
} from '../../src/pcp/codec.ts';

const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString('hex');
const bytes = (h: string) => Uint8Array.from(Buffer.from(h.replace(/\s+/g, ''), 'hex'));

/** miniupnpd 2.3.1's real answers, captured in the test namespaces (see the file's `source`). */
const captured = JSON.parse(readFileSync(new URL('./fixtures/miniupnpd-2.3.1.json', import.meta.url), 'utf8')) as {
  exchanges: { name: string; request: string; response: string }[];
};
const exchange = (name: string) => {
  const found = captured.exchanges.find((e) => e.name === name);
  if (!found) throw new Error(`no exchange ${name} in the fixture`);
  return found;
};

const NONCE_A = '0102030405060708090a0b0c';
const NONCE_B = 'aaaaaaaaaaaaaaaaaaaaaaaa';
const LAN = '192.168.77.2';
const map = (fields: Partial<MapRequest>): MapRequest => ({
  lifetimeSeconds: 3600,
  clientAddress: LAN,
  nonce: NONCE_A,
  protocol: 17,
  internalPort: 5060,
  suggestedExternalPort: 5060,
  suggestedExternalAddress: '0.0.0.0',
  ...fields,
});

describe('PCP requests (RFC 6887 §7.1, §11.1, §14.1)', () => {
  it('should encode ANNOUNCE as the 24-byte header: version 2, opcode 0, lifetime 0, our address IPv4-mapped', () => {
    expect(hex(encodeAnnounceRequest(LAN))).toBe(
      '02 00 0000 00000000 00000000000000000000ffff c0a84d02'.replace(/ /g, ''),
    );
  });

  it('should encode a MAP request: header, nonce, protocol 17, reserved, ports, suggested address ::ffff:0.0.0.0', () => {
    expect(hex(encodeMapRequest(map({})))).toBe(
      '02 01 0000 00000e10 00000000000000000000ffffc0a84d02 0102030405060708090a0b0c 11 000000 13c4 13c4 00000000000000000000ffff00000000'.replace(
        / /g,
        '',
      ),
    );
  });

  it('should encode byte for byte the requests miniupnpd 2.3.1 answered', () => {
    const built: Record<string, Uint8Array> = {
      announce: encodeAnnounceRequest(LAN),
      map: encodeMapRequest(map({})),
      mapLong: encodeMapRequest(map({ lifetimeSeconds: 999_999, internalPort: 16384, suggestedExternalPort: 16384 })),
      mapShort: encodeMapRequest(map({ lifetimeSeconds: 10, internalPort: 5066, suggestedExternalPort: 5066 })),
      mapTakenPort: encodeMapRequest(
        map({ lifetimeSeconds: 600, nonce: NONCE_B, internalPort: 5068, suggestedExternalPort: 5066 }),
      ),
      unmapWrongNonce: encodeMapRequest(map({ lifetimeSeconds: 0, nonce: NONCE_B, suggestedExternalPort: 0 })),
      unmap: encodeMapRequest(map({ lifetimeSeconds: 0, suggestedExternalPort: 0 })),
      addressMismatch: encodeMapRequest(
        map({ clientAddress: '192.168.77.9', internalPort: 5062, suggestedExternalPort: 5062 }),
      ),
    };
    for (const [name, request] of Object.entries(built)) expect(hex(request), name).toBe(exchange(name).request);
  });
});

describe('decodePcpResponse on miniupnpd 2.3.1 answers', () => {
  const epochSeconds = 0x4098;
  const mapped = { kind: 'map', opcode: 1, epochSeconds, protocol: 17, externalAddress: '11.0.0.1' } as const;
  const expected: Record<string, PcpResponse> = {
    announce: { kind: 'announce', opcode: 0, resultCode: 0, result: 'SUCCESS', lifetimeSeconds: 0, epochSeconds },
    map: {
      ...mapped,
      resultCode: 0,
      result: 'SUCCESS',
      lifetimeSeconds: 3600,
      nonce: NONCE_A,
      internalPort: 5060,
      externalPort: 5060,
    },
    mapLong: {
      ...mapped,
      resultCode: 0,
      result: 'SUCCESS',
      lifetimeSeconds: 86_400,
      nonce: NONCE_A,
      internalPort: 16384,
      externalPort: 16384,
    },
    mapShort: {
      ...mapped,
      resultCode: 0,
      result: 'SUCCESS',
      lifetimeSeconds: 120,
      nonce: NONCE_A,
      internalPort: 5066,
      externalPort: 5066,
    },
    mapTakenPort: {
      ...mapped,
      resultCode: 0,
      result: 'SUCCESS',
      lifetimeSeconds: 600,
      nonce: NONCE_B,
      internalPort: 5068,
      externalPort: 5067,
    },
    unmapWrongNonce: {
      ...mapped,
      resultCode: 2,
      result: 'NOT_AUTHORIZED',
      lifetimeSeconds: 0,
      nonce: NONCE_B,
      internalPort: 5060,
      externalPort: 0,
    },
    unmap: {
      ...mapped,
      resultCode: 0,
      result: 'SUCCESS',
      lifetimeSeconds: 0,
      nonce: NONCE_A,
      internalPort: 5060,
      externalPort: 0,
    },
    unmapGone: {
      ...mapped,
      resultCode: 8,
      result: 'NO_RESOURCES',
      lifetimeSeconds: 30,
      nonce: NONCE_A,
      internalPort: 5060,
      externalPort: 0,
    },
    addressMismatch: {
      ...mapped,
      resultCode: 12,
      result: 'ADDRESS_MISMATCH',
      lifetimeSeconds: 0,
      nonce: NONCE_A,
      internalPort: 5062,
      externalPort: 5062,
      externalAddress: '0.0.0.0',
    },
    mapWithoutFields: {
      kind: 'bare',
      opcode: 1,
      resultCode: 3,
      result: 'MALFORMED_REQUEST',
      lifetimeSeconds: 0,
      epochSeconds,
    },
    version3: {
      kind: 'announce',
      opcode: 0,
      resultCode: 1,
      result: 'UNSUPP_VERSION',
      lifetimeSeconds: 0,
      epochSeconds,
    },
    unknownOpcode: {
      kind: 'bare',
      opcode: 5,
      resultCode: 4,
      result: 'UNSUPP_OPCODE',
      lifetimeSeconds: 0,
      epochSeconds,
    },
  };
  for (const [name, value] of Object.entries(expected)) {
    it(`should read '${name}' as ${value.kind} ${value.result}`, () => {
      expect(decodePcpResponse(bytes(exchange(name).response))).toEqual({ ok: true, value });
    });
  }

  it('should report its NAT-PMP answer on the same port as a NAT-PMP answer, not as PCP', () => {
    expect(decodePcpResponse(bytes(exchange('natPmpExternalAddress').response))).toEqual({
      ok: false,
      error: { code: 'NAT_PMP_ANSWER', resultCode: 0, message: expect.stringContaining('speaks NAT-PMP, not PCP') },
    });
  });
});

describe('decodePcpResponse', () => {
  it('should name every result code of RFC 6887 §7.4, and the rest UNKNOWN_RESULT', () => {
    expect(Array.from({ length: 15 }, (_, code) => resultCodeName(code))).toEqual([
      'SUCCESS',
      'UNSUPP_VERSION',
      'NOT_AUTHORIZED',
      'MALFORMED_REQUEST',
      'UNSUPP_OPCODE',
      'UNSUPP_OPTION',
      'MALFORMED_OPTION',
      'NETWORK_FAILURE',
      'NO_RESOURCES',
      'UNSUPP_PROTOCOL',
      'USER_EX_QUOTA',
      'CANNOT_PROVIDE_EXTERNAL',
      'ADDRESS_MISMATCH',
      'EXCESSIVE_REMOTE_PEERS',
      'UNKNOWN_RESULT',
    ]);
    expect(resultCodeName(255)).toBe('UNKNOWN_RESULT');
  });

  it("should read a NAT-PMP-only gateway's Unsupported Version (RFC 6886 §3.5) as a NAT-PMP answer with result 1", () => {
    expect(decodePcpResponse(bytes('00 81 0001 00001234'))).toEqual({
      ok: false,
      error: { code: 'NAT_PMP_ANSWER', resultCode: 1, message: expect.stringContaining('"Unsupported Version"') },
    });
  });

  it('should refuse what is too short, of a bad length, not a response, or of another version', () => {
    const header = '0281 0000 00000e10 00004098 000000000000000000000000';
    const cases = [
      ['', 'TRUNCATED'],
      ['0280 00', 'TRUNCATED'],
      ['0280 0000 00000000 00004098 0000000000000000000000', 'TRUNCATED'],
      // A successful MAP answer must carry the MAP fields (60 bytes).
      [`${header} 0102030405060708090a0b0c 11000000 13c4 13c4`, 'TRUNCATED'],
      [`${header} 00`, 'BAD_LENGTH'],
      [`${header}${'00'.repeat(1080)}`, 'BAD_LENGTH'],
      ['0201 0000 00000e10 00000000000000000000ffffc0a84d02', 'NOT_A_RESPONSE'],
      ['0001 0000 13c4 13c4 00000e10', 'NOT_A_RESPONSE'],
      ['0181 0006 00000000 00004098 000000000000000000000000', 'BAD_VERSION'],
    ] as const;
    for (const [raw, code] of cases)
      expect(decodePcpResponse(bytes(raw)), raw).toMatchObject({ ok: false, error: { code } });
    expect(decodePcpResponse(bytes(`${header}${'00'.repeat(1076)}`))).toMatchObject({
      ok: true,
      value: { kind: 'map', externalAddress: '0:0:0:0:0:0:0:0' },
    });
  });

  it('should take an address as IPv4 only when all of its first 96 bits say IPv4-mapped (RFC 6887 §5)', () => {
    const head = '0281 0000 00000e10 00004098 000000000000000000000000 0102030405060708090a0b0c 11000000 13c4 13c4';
    expect(decodePcpResponse(bytes(`${head} 00000000000000000000ffff0b000001`))).toMatchObject({
      value: { externalAddress: '11.0.0.1' },
    });
    expect(decodePcpResponse(bytes(`${head} 20010db8000000000000000000000001`))).toMatchObject({
      value: { externalAddress: '2001:db8:0:0:0:0:0:1' },
    });
    expect(decodePcpResponse(bytes(`${head} 00010000000000000000ffff0b000001`))).toMatchObject({
      value: { externalAddress: '1:0:0:0:0:ffff:b00:1' },
    });
  });

  const hostile = fc.oneof(
    fc.uint8Array({ maxLength: 80 }),
    // Past the version and R-bit checks, into the header and MAP fields.
    fc
      .tuple(fc.constantFrom(0, 2), fc.integer({ min: 128, max: 255 }), fc.uint8Array({ maxLength: 120 }))
      .map(([v, op, rest]) => Uint8Array.of(v, op, ...rest)),
    fc
      .tuple(fc.nat(255), fc.nat(14))
      .map(([result, words]) => Uint8Array.of(2, 129, 0, result, ...new Uint8Array(words * 4 + 8))),
  );

  it('should never throw, whatever the bytes, and read the same from an offset into a larger buffer', () => {
    fc.assert(
      fc.property(hostile, fc.nat(8), (raw, offset) => {
        const shifted = new Uint8Array(raw.length + offset);
        shifted.set(raw, offset);
        const decoded = decodePcpResponse(shifted.subarray(offset));
        expect(decoded).toEqual(decodePcpResponse(raw));
        expect(typeof decoded.ok).toBe('boolean');
      }),
      { numRuns: 2000 },
    );
  });
});

const u32 = fc.nat({ max: 0xffff_ffff });
const resultCode = fc.nat(255);
const header = { resultCode, lifetimeSeconds: u32, epochSeconds: u32 };
const named = <T extends { resultCode: number }>(r: T) => ({ ...r, result: resultCodeName(r.resultCode) });
const response: fc.Arbitrary<PcpResponse> = fc.oneof(
  fc.record({ kind: fc.constant('announce' as const), opcode: fc.constant(0), ...header }).map(named),
  fc
    .record({
      kind: fc.constant('map' as const),
      opcode: fc.constant(1),
      ...header,
      nonce: fc.uint8Array({ minLength: 12, maxLength: 12 }).map(hex),
      protocol: fc.nat(255),
      internalPort: fc.nat(65535),
      externalPort: fc.nat(65535),
      externalAddress: fc.ipV4(),
    })
    .map(named),
  // Another opcode, or a MAP refusal without the MAP fields.
  fc
    .record({ kind: fc.constant('bare' as const), opcode: fc.integer({ min: 1, max: 127 }), ...header })
    .filter((r) => r.opcode !== 1 || r.resultCode !== 0)
    .map(named),
);

describe('encodePcpResponse ∘ decodePcpResponse', () => {
  it('should give back every response, refusals included', () => {
    fc.assert(
      fc.property(response, (r) => {
        expect(decodePcpResponse(encodePcpResponse(r))).toEqual({ ok: true, value: r });
      }),
    );
  });

  it('should give back the raw bytes of every well-formed response with its reserved bytes zero (serialize ∘ parse)', () => {
    const raw = fc
      .tuple(
        fc.constantFrom(0, 1, 7),
        resultCode,
        fc.uint8Array({ minLength: 8, maxLength: 8 }),
        fc.uint8Array({ minLength: 16, maxLength: 16 }),
        fc.uint8Array({ minLength: 4, maxLength: 4 }),
      )
      .map(([opcode, result, lifetimeAndEpoch, nonceProtocol, ipv4]) => {
        const b = new Uint8Array(opcode === 1 ? 60 : 24);
        b.set([2, 128 + opcode, 0, result]);
        b.set(lifetimeAndEpoch, 4);
        if (opcode === 1) {
          b.set(nonceProtocol.subarray(0, 13), 24);
          b.set(nonceProtocol.subarray(12, 16), 40);
          b.set([0xff, 0xff, ...ipv4], 54);
        }
        return b;
      });
    fc.assert(
      fc.property(raw, (b) => {
        const decoded = decodePcpResponse(b);
        expect(decoded.ok).toBe(true);
        if (decoded.ok) expect(hex(encodePcpResponse(decoded.value))).toBe(hex(b));
      }),
    );
  });
});
