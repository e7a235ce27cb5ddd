import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  crc32,
  encodeBindingRequest,
  encodeStunMessage,
  formatIpv6,
  METHOD_BINDING,
  parseStunMessage,
  type StunAddress,
  type StunChangeRequest,
  type StunClass,
  type StunMessageInit,
} from '../../src/stun/message.ts';

function hex(text: string): Uint8Array {
  return Uint8Array.from(Buffer.from(text.replace(/\s+/g, ''), 'hex'));
}

const RFC5769_TRANSACTION_ID = hex('b7e7a701 bc34d686 fa87dfae');

// RFC 5769 §2.2: padding of "test vector" is 0x20, MESSAGE-INTEGRITY uses password VOkJxbRl1RmTxUk/WvJxBt.
const RFC5769_IPV4_RESPONSE = hex(`
  0101003c 2112a442 b7e7a701 bc34d686 fa87dfae
  8022000b 74657374 20766563 746f7220
  00200008 0001a147 e112a643
  00080014 2b91f599 fd9e90c3 8c7489f9 2af9ba53 f06be7d7
  80280004 c07d4c96`);

// RFC 5769 §2.3.
const RFC5769_IPV6_RESPONSE = hex(`
  01010048 2112a442 b7e7a701 bc34d686 fa87dfae
  8022000b 74657374 20766563 746f7220
  00200014 0002a147 0113a9fa a5d3f179 bc25f4b5 bed2b9d9
  00080014 a382954e 4be67bf1 1784c97c 8292c275 bfe3ed41
  80280004 c8fb0b4c`);

// RFC 5769 §2.1, a Binding request with ICE attributes (PRIORITY, ICE-CONTROLLED, USERNAME).
const RFC5769_REQUEST = hex(`
  00010058 2112a442 b7e7a701 bc34d686 fa87dfae
  80220010 5354554e 20746573 7420636c 69656e74
  00240004 6e0001ff
  80290008 932ff9b1 51263b36
  00060009 6576746a 3a683676 59202020
  00080014 9aeaa70c bfd8cb56 781ef2b5 b2d3f249 c1b571a2
  80280004 e57a3bcf`);

describe('STUN message codec (RFC 8489, RFC 5769 vectors)', () => {
  it('should compute the CRC-32 check value of "123456789"', () => {
    expect(crc32(new TextEncoder().encode('123456789'))).toBe(0xcbf43926);
  });

  it('should decode the RFC 5769 §2.2 IPv4 response', () => {
    const parsed = parseStunMessage(RFC5769_IPV4_RESPONSE);
    expect(parsed).toEqual({
      ok: true,
      value: {
        class: 'success',
        method: METHOD_BINDING,
        transactionId: RFC5769_TRANSACTION_ID,
        xorMappedAddress: { family: 4, address: '192.0.2.1', port: 32853 },
        software: 'test vector',
        messageIntegrity: true,
        fingerprintOk: true,
        unknownAttributes: [],
      },
    });
  });

  it('should decode the RFC 5769 §2.3 IPv6 response', () => {
    const parsed = parseStunMessage(RFC5769_IPV6_RESPONSE);
    expect(parsed.ok && parsed.value.xorMappedAddress).toEqual({
      family: 6,
      address: '2001:db8:1234:5678:11:2233:4455:6677',
      port: 32853,
    });
    expect(parsed.ok && parsed.value.software).toBe('test vector');
    expect(parsed.ok && parsed.value.fingerprintOk).toBe(true);
  });

  it('should decode the RFC 5769 §2.1 request and list the ICE attributes it does not know', () => {
    const parsed = parseStunMessage(RFC5769_REQUEST);
    expect(parsed.ok && parsed.value.class).toBe('request');
    expect(parsed.ok && parsed.value.software).toBe('STUN test client');
    expect(parsed.ok && parsed.value.fingerprintOk).toBe(true);
    expect(parsed.ok && parsed.value.unknownAttributes).toEqual([0x0024, 0x8029, 0x0006]);
  });

  it('should refuse a vector with one bit flipped as BAD_FINGERPRINT', () => {
    const damaged = RFC5769_IPV4_RESPONSE.slice();
    damaged[33] ^= 0x01; // inside the XOR-MAPPED-ADDRESS
    expect(parseStunMessage(damaged)).toMatchObject({ ok: false, error: { code: 'BAD_FINGERPRINT' } });
  });

  it('should refuse truncated, non-STUN and inconsistent input with the matching code', () => {
    expect(parseStunMessage(RFC5769_IPV4_RESPONSE.subarray(0, 19))).toMatchObject({
      ok: false,
      error: { code: 'TOO_SHORT' },
    });
    expect(parseStunMessage(RFC5769_IPV4_RESPONSE.subarray(0, 60))).toMatchObject({
      ok: false,
      error: { code: 'BAD_LENGTH' },
    });
    const noCookie = RFC5769_IPV4_RESPONSE.slice();
    noCookie[4] = 0;
    expect(parseStunMessage(noCookie)).toMatchObject({ ok: false, error: { code: 'NOT_STUN' } });
    const rtpLike = RFC5769_IPV4_RESPONSE.slice();
    rtpLike[0] = 0x80;
    expect(parseStunMessage(rtpLike)).toMatchObject({ ok: false, error: { code: 'NOT_STUN' } });
    const overlong = RFC5769_IPV4_RESPONSE.slice();
    overlong[23] = 0xff; // SOFTWARE claims 255 bytes
    expect(parseStunMessage(overlong)).toMatchObject({ ok: false, error: { code: 'BAD_ATTRIBUTE' } });
    const badFamily = encodeStunMessage({
      class: 'success',
      method: METHOD_BINDING,
      transactionId: RFC5769_TRANSACTION_ID,
      xorMappedAddress: { family: 4, address: '10.0.0.1', port: 1 },
    });
    badFamily[25] = 0x03;
    expect(parseStunMessage(badFamily)).toMatchObject({ ok: false, error: { code: 'BAD_ATTRIBUTE' } });
  });

  it('should refuse attributes after FINGERPRINT', () => {
    const withFingerprint = encodeBindingRequest(RFC5769_TRANSACTION_ID, { fingerprint: true });
    const extra = new Uint8Array(withFingerprint.length + 8);
    extra.set(withFingerprint);
    extra.set([0x80, 0x22, 0x00, 0x04, 0x61, 0x62, 0x63, 0x64], withFingerprint.length);
    new DataView(extra.buffer).setUint16(2, extra.length - 20);
    expect(parseStunMessage(extra)).toMatchObject({ ok: false, error: { code: 'BAD_FINGERPRINT' } });
  });

  it('should encode a Binding request byte for byte and read it back', () => {
    const bytes = encodeBindingRequest(RFC5769_TRANSACTION_ID, { software: 'avchat', fingerprint: true });
    const crc = (crc32(bytes.subarray(0, 32)) ^ 0x5354554e) >>> 0;
    expect(Buffer.from(bytes).toString('hex')).toBe(
      `000100142112a442b7e7a701bc34d686fa87dfae80220006617663686174000080280004${crc.toString(16).padStart(8, '0')}`,
    );
    expect(parseStunMessage(bytes)).toEqual({
      ok: true,
      value: {
        class: 'request',
        method: 1,
        transactionId: RFC5769_TRANSACTION_ID,
        software: 'avchat',
        messageIntegrity: false,
        fingerprintOk: true,
        unknownAttributes: [],
      },
    });
    expect(Buffer.from(encodeBindingRequest(RFC5769_TRANSACTION_ID)).toString('hex')).toBe(
      '000100002112a442b7e7a701bc34d686fa87dfae',
    );
  });

  it('should write IPv6 addresses as RFC 5952 says', () => {
    expect(formatIpv6(hex('00000000000000000000000000000001'))).toBe('::1');
    expect(formatIpv6(hex('20010db8000000000001000000000001'))).toBe('2001:db8::1:0:0:1');
    expect(formatIpv6(hex('20010db8000100000001000100010001'))).toBe('2001:db8:1:0:1:1:1:1');
    expect(formatIpv6(new Uint8Array(16))).toBe('::');
  });
});

/** A STUN message of `type` with the given raw attributes (type, value), lengths and padding filled in. */
function withAttributes(type: number, attributes: Array<[number, Uint8Array]>): Uint8Array {
  const body = attributes.reduce((n, [, v]) => n + 4 + ((v.length + 3) & ~3), 0);
  const bytes = new Uint8Array(20 + body);
  const view = new DataView(bytes.buffer);
  view.setUint16(0, type);
  view.setUint16(2, body);
  view.setUint32(4, 0x2112a442);
  bytes.set(RFC5769_TRANSACTION_ID, 8);
  let at = 20;
  for (const [t, v] of attributes) {
    view.setUint16(at, t);
    view.setUint16(at + 2, v.length);
    bytes.set(v, at + 4);
    at += 4 + ((v.length + 3) & ~3);
  }
  return bytes;
}

describe('STUN message codec: RFC 5780 NAT behaviour discovery attributes', () => {
  it('should write CHANGE-REQUEST as type 0x0003, 4 bytes, bit A = change IP (0x04), bit B = change port (0x02)', () => {
    const request = (changeRequest: StunChangeRequest) =>
      Buffer.from(encodeBindingRequest(RFC5769_TRANSACTION_ID, { changeRequest })).toString('hex');
    const header = '00010008' + '2112a442' + 'b7e7a701bc34d686fa87dfae';
    expect(request({ changeIp: true, changePort: true })).toBe(`${header}0003000400000006`);
    expect(request({ changeIp: true, changePort: false })).toBe(`${header}0003000400000004`);
    expect(request({ changeIp: false, changePort: true })).toBe(`${header}0003000400000002`);
    expect(request({ changeIp: false, changePort: false })).toBe(`${header}0003000400000000`);
  });

  it('should read CHANGE-REQUEST flags and ignore the bits RFC 5780 leaves at zero', () => {
    const parsed = parseStunMessage(withAttributes(0x0001, [[0x0003, Uint8Array.of(0xff, 0xff, 0xff, 0xf9)]]));
    expect(parsed.ok && parsed.value.changeRequest).toEqual({ changeIp: false, changePort: false });
    const both = parseStunMessage(withAttributes(0x0001, [[0x0003, Uint8Array.of(0, 0, 0, 0x06)]]));
    expect(both.ok && both.value.changeRequest).toEqual({ changeIp: true, changePort: true });
    expect(both.ok && both.value.unknownAttributes).toEqual([]);
  });

  it('should read OTHER-ADDRESS (0x802C) and RESPONSE-ORIGIN (0x802B) in the MAPPED-ADDRESS format, not XORed', () => {
    // 11.0.0.11:3479 and 11.0.0.10:3478, as the two-address coturn of the namespace tests sends them.
    const answer = withAttributes(0x0101, [
      [0x0020, hex('0001 2a60 2a12a543')], // XOR-MAPPED-ADDRESS 11.0.1.1:2930, XORed with the cookie
      [0x802b, hex('0001 0d96 0b00000a')],
      [0x802c, hex('0001 0d97 0b00000b')],
    ]);
    const parsed = parseStunMessage(answer);
    expect(parsed).toMatchObject({
      ok: true,
      value: {
        xorMappedAddress: { family: 4, address: '11.0.1.1', port: 0x2a60 ^ 0x2112 },
        responseOrigin: { family: 4, address: '11.0.0.10', port: 3478 },
        otherAddress: { family: 4, address: '11.0.0.11', port: 3479 },
        unknownAttributes: [],
      },
    });
  });

  it('should read a classic RFC 3489 answer: MAPPED-ADDRESS, SOURCE-ADDRESS (0x0004), CHANGED-ADDRESS (0x0005)', () => {
    // RFC 3489 servers echo the request's 16-byte id, so our magic cookie comes back and the header parses.
    const answer = withAttributes(0x0101, [
      [0x0001, hex('0001 9c40 c0000201')],
      [0x0004, hex('0001 0d96 7f000001')],
      [0x0005, hex('0001 0d97 7f000002')],
    ]);
    const parsed = parseStunMessage(answer);
    expect(parsed).toMatchObject({
      ok: true,
      value: {
        mappedAddress: { family: 4, address: '192.0.2.1', port: 40000 },
        sourceAddress: { family: 4, address: '127.0.0.1', port: 3478 },
        changedAddress: { family: 4, address: '127.0.0.2', port: 3479 },
        // Both are comprehension-required types (below 0x8000): knowing them keeps such answers usable.
        unknownAttributes: [],
      },
    });
  });

  it('should refuse malformed RFC 5780 attributes as BAD_ATTRIBUTE', () => {
    for (const length of [0, 3, 5, 8]) {
      expect(parseStunMessage(withAttributes(0x0001, [[0x0003, new Uint8Array(length)]]))).toMatchObject({
        ok: false,
        error: { code: 'BAD_ATTRIBUTE', message: `CHANGE-REQUEST is 4 bytes, this one ${length}` },
      });
    }
    for (const [type, name] of [
      [0x802c, 'OTHER-ADDRESS'],
      [0x802b, 'RESPONSE-ORIGIN'],
      [0x0004, 'SOURCE-ADDRESS'],
      [0x0005, 'CHANGED-ADDRESS'],
    ] as const) {
      expect(parseStunMessage(withAttributes(0x0101, [[type, hex('0003 0d96 7f000001')]]))).toMatchObject({
        ok: false,
        error: { code: 'BAD_ATTRIBUTE', message: `${name} is not an IPv4 (8 bytes) or IPv6 (20 bytes) address` },
      });
      expect(parseStunMessage(withAttributes(0x0101, [[type, hex('0001 0d96 7f0000')]]))).toMatchObject({
        ok: false,
        error: { code: 'BAD_ATTRIBUTE' },
      });
    }
  });

  it('should never throw on random values of the RFC 5780 and RFC 3489 attributes', () => {
    const attribute = fc.tuple(
      fc.constantFrom(0x0003, 0x0004, 0x0005, 0x802b, 0x802c, 0x0001, 0x0020),
      fc.uint8Array({ maxLength: 24 }),
    );
    fc.assert(
      fc.property(fc.array(attribute, { maxLength: 6 }), (attributes) => {
        const result = parseStunMessage(withAttributes(0x0101, attributes));
        if (!result.ok) expect(result.error.code).toBe('BAD_ATTRIBUTE');
      }),
      { numRuns: 3000 },
    );
  });
});

describe('STUN message codec (properties)', () => {
  it('should never throw, whatever the bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
        const result = parseStunMessage(bytes);
        expect(typeof result.ok).toBe('boolean');
      }),
      { numRuns: 2000 },
    );
  });

  it('should never throw on STUN-shaped bytes (right cookie and length, random attributes)', () => {
    const shaped = fc.tuple(
      fc.integer({ min: 0, max: 0x3fff }),
      fc.uint8Array({ minLength: 12, maxLength: 12 }),
      fc.uint8Array({ maxLength: 30 }).map((a) => a.subarray(0, a.length & ~3)),
    );
    fc.assert(
      fc.property(shaped, ([type, id, body]) => {
        const bytes = new Uint8Array(20 + body.length);
        const view = new DataView(bytes.buffer);
        view.setUint16(0, type);
        view.setUint16(2, body.length);
        view.setUint32(4, 0x2112a442);
        bytes.set(id, 8);
        bytes.set(body, 20);
        const result = parseStunMessage(bytes);
        if (!result.ok) expect(['BAD_ATTRIBUTE', 'BAD_FINGERPRINT']).toContain(result.error.code);
      }),
      { numRuns: 2000 },
    );
  });

  const ipv4 = fc.ipV4();
  const ipv6 = fc.uint8Array({ minLength: 16, maxLength: 16 }).map(formatIpv6);
  const address: fc.Arbitrary<StunAddress> = fc.oneof(
    fc.record({ family: fc.constant(4 as const), address: ipv4, port: fc.integer({ min: 0, max: 0xffff }) }),
    fc.record({ family: fc.constant(6 as const), address: ipv6, port: fc.integer({ min: 0, max: 0xffff }) }),
  );
  const changeRequest: fc.Arbitrary<StunChangeRequest> = fc.record({
    changeIp: fc.boolean(),
    changePort: fc.boolean(),
  });
  const message: fc.Arbitrary<StunMessageInit> = fc.record(
    {
      class: fc.constantFrom<StunClass>('request', 'indication', 'success', 'error'),
      method: fc.integer({ min: 0, max: 0xfff }),
      transactionId: fc.uint8Array({ minLength: 12, maxLength: 12 }),
      software: fc.string({ unit: 'grapheme', maxLength: 40 }),
      xorMappedAddress: address,
      mappedAddress: address,
      changeRequest: changeRequest,
      responseOrigin: address,
      otherAddress: address,
      sourceAddress: address,
      changedAddress: address,
      errorCode: fc.record({
        code: fc.integer({ min: 300, max: 699 }),
        reason: fc.string({ unit: 'grapheme', maxLength: 40 }),
      }),
      fingerprint: fc.boolean(),
    },
    { requiredKeys: ['class', 'method', 'transactionId', 'fingerprint'] },
  );

  it('should read back every message it writes: parse(encode(x)) == x', () => {
    fc.assert(
      fc.property(message, (init) => {
        const { fingerprint, ...fields } = init;
        expect(parseStunMessage(encodeStunMessage(init))).toEqual({
          ok: true,
          value: { ...fields, messageIntegrity: false, fingerprintOk: fingerprint ?? false, unknownAttributes: [] },
        });
      }),
      { numRuns: 1000 },
    );
  });

  // A flip in the FINGERPRINT's own type turns it into an unknown attribute: the message then
  // parses, but no longer as fingerprint-checked.
  it('should never pass a fingerprinted message with a flipped bit as fingerprint-checked', () => {
    fc.assert(
      fc.property(message, fc.nat(), fc.integer({ min: 0, max: 7 }), (init, at, bit) => {
        const bytes = encodeStunMessage({ ...init, fingerprint: true });
        const damaged = bytes.slice();
        damaged[at % bytes.length] ^= 1 << bit;
        const result = parseStunMessage(damaged);
        expect(result.ok && result.value.fingerprintOk).toBe(false);
      }),
      { numRuns: 1000 },
    );
  });
});
