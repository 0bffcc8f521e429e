// SPDX-License-Identifier: Apache-2.0
// This file is part of swift-efs. See LICENSE for details.

/// The RC2 block cipher (RFC 2268), for reading legacy PKCS#12 files only.
///
/// Windows and old openssl versions protect the certificates of a `.pfx` with `pbeWithSHAAnd40BitRC2-CBC`
/// (RFC 7292 appendix C). RC2 is broken; this type only decrypts what such files hold and is never used to protect
/// new data. The key schedule follows RFC 2268 §2, the block operations §3 (encryption, kept for the test vectors
/// of §5) and §4 (decryption).
///
/// ```swift
/// let rc2 = try RC2(key: key, effectiveKeyBits: 40)
/// let plain = try rc2.cbcDecrypt(ciphertext, iv: iv)
/// ```
struct RC2 {
    /// RFC 2268 §2: "PITABLE", a permutation of 0...255 based on the digits of pi.
    static let piTable: [UInt8] = [
        0xd9, 0x78, 0xf9, 0xc4, 0x19, 0xdd, 0xb5, 0xed, 0x28, 0xe9, 0xfd, 0x79, 0x4a, 0xa0, 0xd8, 0x9d,
        0xc6, 0x7e, 0x37, 0x83, 0x2b, 0x76, 0x53, 0x8e, 0x62, 0x4c, 0x64, 0x88, 0x44, 0x8b, 0xfb, 0xa2,
        0x17, 0x9a, 0x59, 0xf5, 0x87, 0xb3, 0x4f, 0x13, 0x61, 0x45, 0x6d, 0x8d, 0x09, 0x81, 0x7d, 0x32,
        0xbd, 0x8f, 0x40, 0xeb, 0x86, 0xb7, 0x7b, 0x0b, 0xf0, 0x95, 0x21, 0x22, 0x5c, 0x6b, 0x4e, 0x82,
        0x54, 0xd6, 0x65, 0x93, 0xce, 0x60, 0xb2, 0x1c, 0x73, 0x56, 0xc0, 0x14, 0xa7, 0x8c, 0xf1, 0xdc,
        0x12, 0x75, 0xca, 0x1f, 0x3b, 0xbe, 0xe4, 0xd1, 0x42, 0x3d, 0xd4, 0x30, 0xa3, 0x3c, 0xb6, 0x26,
        0x6f, 0xbf, 0x0e, 0xda, 0x46, 0x69, 0x07, 0x57, 0x27, 0xf2, 0x1d, 0x9b, 0xbc, 0x94, 0x43, 0x03,
        0xf8, 0x11, 0xc7, 0xf6, 0x90, 0xef, 0x3e, 0xe7, 0x06, 0xc3, 0xd5, 0x2f, 0xc8, 0x66, 0x1e, 0xd7,
        0x08, 0xe8, 0xea, 0xde, 0x80, 0x52, 0xee, 0xf7, 0x84, 0xaa, 0x72, 0xac, 0x35, 0x4d, 0x6a, 0x2a,
        0x96, 0x1a, 0xd2, 0x71, 0x5a, 0x15, 0x49, 0x74, 0x4b, 0x9f, 0xd0, 0x5e, 0x04, 0x18, 0xa4, 0xec,
        0xc2, 0xe0, 0x41, 0x6e, 0x0f, 0x51, 0xcb, 0xcc, 0x24, 0x91, 0xaf, 0x50, 0xa1, 0xf4, 0x70, 0x39,
        0x99, 0x7c, 0x3a, 0x85, 0x23, 0xb8, 0xb4, 0x7a, 0xfc, 0x02, 0x36, 0x5b, 0x25, 0x55, 0x97, 0x31,
        0x2d, 0x5d, 0xfa, 0x98, 0xe3, 0x8a, 0x92, 0xae, 0x05, 0xdf, 0x29, 0x10, 0x67, 0x6c, 0xba, 0xc9,
        0xd3, 0x00, 0xe6, 0xcf, 0xe1, 0x9e, 0xa8, 0x2c, 0x63, 0x16, 0x01, 0x3f, 0x58, 0xe2, 0x89, 0xa9,
        0x0d, 0x38, 0x34, 0x1b, 0xab, 0x33, 0xff, 0xb0, 0xbb, 0x48, 0x0c, 0x5f, 0xb9, 0xb1, 0xcd, 0x2e,
        0xc5, 0xf3, 0xdb, 0x47, 0xe5, 0xa5, 0x9c, 0x77, 0x0a, 0xa6, 0x20, 0x68, 0xfe, 0x7f, 0xc1, 0xad,
    ]

    /// The block size in bytes.
    static let blockSize = 8

    /// RFC 2268 §2: the 64 expanded key words K[0..63].
    private var k: [UInt16]

    /// Expands `key` (1...128 bytes) with `effectiveKeyBits` (1...1024) effective key bits (RFC 2268 §2).
    ///
    /// - Throws: ``FormatError`` `.malformed` for a key or effective key length out of range.
    init(key: [UInt8], effectiveKeyBits: Int) throws(FormatError) {
        let t = key.count
        guard (1...128).contains(t), (1...1024).contains(effectiveKeyBits) else {
            throw .malformed("RC2 key of \(t) bytes with \(effectiveKeyBits) effective bits is out of range")
        }
        // L[0..T-1] = key; L[i] = PITABLE[L[i-1] + L[i-T]] for i = T..127.
        var l = [UInt8](repeating: 0, count: 128)
        l.replaceSubrange(0..<t, with: key)
        for i in t..<128 { l[i] = Self.piTable[Int(l[i - 1] &+ l[i - t])] }
        // T8 = (T1+7)/8, TM = 255 mod 2^(8 + T1 - 8*T8); L[128-T8] = PITABLE[L[128-T8] & TM];
        // L[i] = PITABLE[L[i+1] XOR L[i+T8]] for i = 127-T8 down to 0.
        let t1 = effectiveKeyBits
        let t8 = (t1 + 7) / 8
        let tm = UInt8(truncatingIfNeeded: 0xFF >> (8 * t8 - t1))
        l[128 - t8] = Self.piTable[Int(l[128 - t8] & tm)]
        var i = 127 - t8
        while i >= 0 {
            l[i] = Self.piTable[Int(l[i + 1] ^ l[i + t8])]
            i -= 1
        }
        // K[i] = L[2i] + 256 * L[2i+1].
        k = (0..<64).map { UInt16(l[2 * $0]) | UInt16(l[2 * $0 + 1]) << 8 }
        for j in l.indices { l[j] = 0 }
    }

    private static let shifts: [UInt16] = [1, 2, 3, 5]

    /// RFC 2268 §3: encrypts one 8-byte block in place (five mixing rounds, a mashing round, six mixing rounds, a
    /// mashing round, five mixing rounds).
    func encryptBlock(_ block: inout [UInt8], at offset: Int) {
        var r = Self.load(block, offset)
        var j = 0
        func mixRound() {
            for i in 0..<4 {
                // R[i] += K[j] + (R[i-1] & R[i-2]) + (~R[i-1] & R[i-3]); j += 1; R[i] = R[i] rol s[i]
                let a = r[(i + 3) & 3], b = r[(i + 2) & 3], c = r[(i + 1) & 3]
                r[i] = r[i] &+ k[j] &+ (a & b) &+ (~a & c)
                j += 1
                r[i] = (r[i] << Self.shifts[i]) | (r[i] >> (16 - Self.shifts[i]))
            }
        }
        func mashRound() {
            // R[i] += K[R[i-1] & 63]
            for i in 0..<4 { r[i] = r[i] &+ k[Int(r[(i + 3) & 3] & 63)] }
        }
        for _ in 0..<5 { mixRound() }
        mashRound()
        for _ in 0..<6 { mixRound() }
        mashRound()
        for _ in 0..<5 { mixRound() }
        Self.store(r, into: &block, offset)
    }

    /// RFC 2268 §4: decrypts one 8-byte block in place (the inverse of ``encryptBlock(_:at:)``).
    func decryptBlock(_ block: inout [UInt8], at offset: Int) {
        var r = Self.load(block, offset)
        var j = 63
        func rMixRound() {
            for i in stride(from: 3, through: 0, by: -1) {
                // R[i] = R[i] ror s[i]; R[i] -= K[j] + (R[i-1] & R[i-2]) + (~R[i-1] & R[i-3]); j -= 1
                r[i] = (r[i] >> Self.shifts[i]) | (r[i] << (16 - Self.shifts[i]))
                let a = r[(i + 3) & 3], b = r[(i + 2) & 3], c = r[(i + 1) & 3]
                r[i] = r[i] &- k[j] &- (a & b) &- (~a & c)
                j -= 1
            }
        }
        func rMashRound() {
            // R[i] -= K[R[i-1] & 63], for i = 3 down to 0
            for i in stride(from: 3, through: 0, by: -1) { r[i] = r[i] &- k[Int(r[(i + 3) & 3] & 63)] }
        }
        for _ in 0..<5 { rMixRound() }
        rMashRound()
        for _ in 0..<6 { rMixRound() }
        rMashRound()
        for _ in 0..<5 { rMixRound() }
        Self.store(r, into: &block, offset)
    }

    /// CBC decryption with PKCS#7 padding removed (RFC 8018 §6.1.1 step 4, RFC 7292 appendix B).
    ///
    /// - Throws: ``FormatError/authenticationFailed`` when the length is not a multiple of 8 or the padding is
    ///   wrong, which is what a wrong password gives.
    func cbcDecrypt(_ ciphertext: [UInt8], iv: [UInt8]) throws(FormatError) -> [UInt8] {
        guard iv.count == Self.blockSize else { throw .malformed("RC2-CBC IV is \(iv.count) bytes, not 8") }
        guard !ciphertext.isEmpty, ciphertext.count % Self.blockSize == 0 else { throw .authenticationFailed }
        var out = ciphertext
        var previous = iv
        for offset in stride(from: 0, to: out.count, by: Self.blockSize) {
            let current = Array(ciphertext[offset..<offset + Self.blockSize])
            decryptBlock(&out, at: offset)
            for i in 0..<Self.blockSize { out[offset + i] ^= previous[i] }
            previous = current
        }
        return try PKCS7Padding.remove(from: out, blockSize: Self.blockSize)
    }

    /// CBC encryption with PKCS#7 padding (tests only: we never write RC2).
    func cbcEncrypt(_ plaintext: [UInt8], iv: [UInt8]) -> [UInt8] {
        precondition(iv.count == Self.blockSize)
        let pad = Self.blockSize - plaintext.count % Self.blockSize
        var out = plaintext + [UInt8](repeating: UInt8(pad), count: pad)
        var previous = iv
        for offset in stride(from: 0, to: out.count, by: Self.blockSize) {
            for i in 0..<Self.blockSize { out[offset + i] ^= previous[i] }
            encryptBlock(&out, at: offset)
            previous = Array(out[offset..<offset + Self.blockSize])
        }
        return out
    }

    /// The block as four little-endian 16-bit words R[0..3] (RFC 2268 §3).
    private static func load(_ b: [UInt8], _ o: Int) -> [UInt16] {
        (0..<4).map { UInt16(b[o + 2 * $0]) | UInt16(b[o + 2 * $0 + 1]) << 8 }
    }

    private static func store(_ r: [UInt16], into b: inout [UInt8], _ o: Int) {
        for i in 0..<4 {
            b[o + 2 * i] = UInt8(truncatingIfNeeded: r[i])
            b[o + 2 * i + 1] = UInt8(truncatingIfNeeded: r[i] >> 8)
        }
    }
}

/// PKCS#7 padding (RFC 5652 §6.3), as every CBC mode of PKCS#5 and PKCS#12 uses it.
enum PKCS7Padding {
    /// Removes and checks the padding.
    ///
    /// - Throws: ``FormatError/authenticationFailed`` when the padding is not valid (a wrong key, almost always).
    static func remove(from plain: [UInt8], blockSize: Int) throws(FormatError) -> [UInt8] {
        guard let last = plain.last, plain.count % blockSize == 0 else { throw .authenticationFailed }
        let n = Int(last)
        guard (1...blockSize).contains(n), n <= plain.count else { throw .authenticationFailed }
        var bad: UInt8 = 0
        for b in plain[(plain.count - n)...] { bad |= b ^ last }
        guard bad == 0 else { throw .authenticationFailed }
        return Array(plain[..<(plain.count - n)])
    }
}
