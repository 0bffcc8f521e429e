// SPDX-License-Identifier: Apache-2.0
// This file is part of swift-efs. See LICENSE for details.

// Pure-Swift DES (FIPS 46-3), Triple DES (NIST SP 800-67, EDE) and DESX (Rivest; with the Windows EFS key
// expansion of `windows-efs-metadata.md` §4.5). These exist only to read (and write) data that Windows and PKCS#12
// files protect with them; none of them is used by the native swift-efs format. No padding anywhere: callers pass
// whole 8-byte blocks.
//
// Design: the classic table-driven form. The 8 S-boxes are merged with the P permutation into eight 64-entry
// tables of UInt32 ("SP boxes"), computed once from the FIPS 46-3 tables below. The E expansion is two rotations of
// R, each exposing four 6-bit groups at byte positions, and each round key is stored as the two matching UInt32
// words. IP and FP are byte-indexed lookup tables over UInt64. No per-bit work happens per block.

// MARK: - FIPS 46-3 tables (bit positions 1-based, bit 1 = most significant)

private let initialPermutation: [Int] = [
    58, 50, 42, 34, 26, 18, 10, 2, 60, 52, 44, 36, 28, 20, 12, 4,
    62, 54, 46, 38, 30, 22, 14, 6, 64, 56, 48, 40, 32, 24, 16, 8,
    57, 49, 41, 33, 25, 17, 9, 1, 59, 51, 43, 35, 27, 19, 11, 3,
    61, 53, 45, 37, 29, 21, 13, 5, 63, 55, 47, 39, 31, 23, 15, 7,
]

private let roundPermutation: [Int] = [
    16, 7, 20, 21, 29, 12, 28, 17, 1, 15, 23, 26, 5, 18, 31, 10,
    2, 8, 24, 14, 32, 27, 3, 9, 19, 13, 30, 6, 22, 11, 4, 25,
]

private let permutedChoice1: [Int] = [
    57, 49, 41, 33, 25, 17, 9, 1, 58, 50, 42, 34, 26, 18,
    10, 2, 59, 51, 43, 35, 27, 19, 11, 3, 60, 52, 44, 36,
    63, 55, 47, 39, 31, 23, 15, 7, 62, 54, 46, 38, 30, 22,
    14, 6, 61, 53, 45, 37, 29, 21, 13, 5, 28, 20, 12, 4,
]

private let permutedChoice2: [Int] = [
    14, 17, 11, 24, 1, 5, 3, 28, 15, 6, 21, 10,
    23, 19, 12, 4, 26, 8, 16, 7, 27, 20, 13, 2,
    41, 52, 31, 37, 47, 55, 30, 40, 51, 45, 33, 48,
    44, 49, 39, 56, 34, 53, 46, 42, 50, 36, 29, 32,
]

private let keyShifts: [Int] = [1, 1, 2, 2, 2, 2, 2, 2, 1, 2, 2, 2, 2, 2, 2, 1]

/// S1…S8, each 4 rows of 16, row = outer bits, column = inner bits.
private let sBoxes: [[UInt8]] = [
    [
        14, 4, 13, 1, 2, 15, 11, 8, 3, 10, 6, 12, 5, 9, 0, 7,
        0, 15, 7, 4, 14, 2, 13, 1, 10, 6, 12, 11, 9, 5, 3, 8,
        4, 1, 14, 8, 13, 6, 2, 11, 15, 12, 9, 7, 3, 10, 5, 0,
        15, 12, 8, 2, 4, 9, 1, 7, 5, 11, 3, 14, 10, 0, 6, 13,
    ],
    [
        15, 1, 8, 14, 6, 11, 3, 4, 9, 7, 2, 13, 12, 0, 5, 10,
        3, 13, 4, 7, 15, 2, 8, 14, 12, 0, 1, 10, 6, 9, 11, 5,
        0, 14, 7, 11, 10, 4, 13, 1, 5, 8, 12, 6, 9, 3, 2, 15,
        13, 8, 10, 1, 3, 15, 4, 2, 11, 6, 7, 12, 0, 5, 14, 9,
    ],
    [
        10, 0, 9, 14, 6, 3, 15, 5, 1, 13, 12, 7, 11, 4, 2, 8,
        13, 7, 0, 9, 3, 4, 6, 10, 2, 8, 5, 14, 12, 11, 15, 1,
        13, 6, 4, 9, 8, 15, 3, 0, 11, 1, 2, 12, 5, 10, 14, 7,
        1, 10, 13, 0, 6, 9, 8, 7, 4, 15, 14, 3, 11, 5, 2, 12,
    ],
    [
        7, 13, 14, 3, 0, 6, 9, 10, 1, 2, 8, 5, 11, 12, 4, 15,
        13, 8, 11, 5, 6, 15, 0, 3, 4, 7, 2, 12, 1, 10, 14, 9,
        10, 6, 9, 0, 12, 11, 7, 13, 15, 1, 3, 14, 5, 2, 8, 4,
        3, 15, 0, 6, 10, 1, 13, 8, 9, 4, 5, 11, 12, 7, 2, 14,
    ],
    [
        2, 12, 4, 1, 7, 10, 11, 6, 8, 5, 3, 15, 13, 0, 14, 9,
        14, 11, 2, 12, 4, 7, 13, 1, 5, 0, 15, 10, 3, 9, 8, 6,
        4, 2, 1, 11, 10, 13, 7, 8, 15, 9, 12, 5, 6, 3, 0, 14,
        11, 8, 12, 7, 1, 14, 2, 13, 6, 15, 0, 9, 10, 4, 5, 3,
    ],
    [
        12, 1, 10, 15, 9, 2, 6, 8, 0, 13, 3, 4, 14, 7, 5, 11,
        10, 15, 4, 2, 7, 12, 9, 5, 6, 1, 13, 14, 0, 11, 3, 8,
        9, 14, 15, 5, 2, 8, 12, 3, 7, 0, 4, 10, 1, 13, 11, 6,
        4, 3, 2, 12, 9, 5, 15, 10, 11, 14, 1, 7, 6, 0, 8, 13,
    ],
    [
        4, 11, 2, 14, 15, 0, 8, 13, 3, 12, 9, 7, 5, 10, 6, 1,
        13, 0, 11, 7, 4, 9, 1, 10, 14, 3, 5, 12, 2, 15, 8, 6,
        1, 4, 11, 13, 12, 3, 7, 14, 10, 15, 6, 8, 0, 5, 9, 2,
        6, 11, 13, 8, 1, 4, 10, 7, 9, 5, 0, 15, 14, 2, 3, 12,
    ],
    [
        13, 2, 8, 4, 6, 15, 11, 1, 10, 9, 3, 14, 5, 0, 12, 7,
        1, 15, 13, 8, 10, 3, 7, 4, 12, 5, 6, 11, 0, 14, 9, 2,
        7, 11, 4, 1, 9, 12, 14, 2, 0, 6, 10, 13, 15, 3, 5, 8,
        2, 1, 14, 7, 4, 10, 8, 13, 15, 12, 9, 0, 3, 5, 6, 11,
    ],
]

// MARK: - Precomputed tables

/// Tables derived once from the FIPS tables.
private enum DESTables {
    /// `sp[64 * i + x]`: S-box i+1 applied to the 6-bit group x, its 4 output bits placed at positions 4i+1…4i+4 and
    /// then permuted by P. The eight outputs occupy disjoint bits, so the round function ORs them.
    static let sp: [UInt32] = {
        var out = [UInt32](repeating: 0, count: 8 * 64)
        for i in 0..<8 {
            for x in 0..<64 {
                let row = ((x >> 4) & 2) | (x & 1)
                let col = (x >> 1) & 0xF
                let s = UInt32(sBoxes[i][row * 16 + col])
                let pre = s << UInt32(28 - 4 * i)
                var post: UInt32 = 0
                for (j, from) in roundPermutation.enumerated() where pre & (1 << UInt32(32 - from)) != 0 {
                    post |= 1 << UInt32(31 - j)
                }
                out[64 * i + x] = post
            }
        }
        return out
    }()

    /// Byte-indexed tables of a 64-bit permutation: `t[256 * byteIndex + value]`.
    static func permutationTable(_ perm: [Int]) -> [UInt64] {
        var out = [UInt64](repeating: 0, count: 8 * 256)
        for byteIndex in 0..<8 {
            for value in 0..<256 {
                let input = UInt64(value) << UInt64(56 - 8 * byteIndex)
                var result: UInt64 = 0
                for (j, from) in perm.enumerated() where input & (1 << UInt64(64 - from)) != 0 {
                    result |= 1 << UInt64(63 - j)
                }
                out[256 * byteIndex + value] = result
            }
        }
        return out
    }

    static let ip: [UInt64] = permutationTable(initialPermutation)
    static let fp: [UInt64] = {
        var inverse = [Int](repeating: 0, count: 64)
        for (j, from) in initialPermutation.enumerated() { inverse[from - 1] = j + 1 }
        return permutationTable(inverse)
    }()

    @inline(__always)
    static func permute(_ x: UInt64, _ t: [UInt64]) -> UInt64 {
        var r: UInt64 = 0
        var shift: UInt64 = 56
        for i in 0..<8 {
            r |= t[256 * i + Int(truncatingIfNeeded: (x >> shift) & 0xFF)]
            shift &-= 8
        }
        return r
    }
}

// MARK: - The DES core

/// One DES key schedule: for each of the 16 rounds, two words holding the round key's 6-bit groups 1,3,5,7 and
/// 2,4,6,8 at byte positions, matching the two rotations of R in ``DESCore/rounds``.
struct DESKeySchedule: Sendable {
    /// Encryption order: 32 words.
    let encrypt: [UInt32]
    /// Decryption order (rounds reversed): 32 words.
    let decrypt: [UInt32]

    /// `key` is 8 bytes; the parity bits (the low bit of each byte) are ignored, as FIPS 46-3 allows.
    init(_ key: ArraySlice<UInt8>) {
        precondition(key.count == 8, "a DES key is 8 bytes")
        var k: UInt64 = 0
        for b in key { k = k << 8 | UInt64(b) }
        // PC-1: 56 bits as C (28) and D (28).
        var cd: UInt64 = 0
        for from in permutedChoice1 { cd = cd << 1 | (k >> UInt64(64 - from) & 1) }
        var c = UInt32(truncatingIfNeeded: cd >> 28) & 0x0FFF_FFFF
        var d = UInt32(truncatingIfNeeded: cd) & 0x0FFF_FFFF
        var words: [UInt32] = []
        words.reserveCapacity(32)
        for round in 0..<16 {
            let s = UInt32(keyShifts[round])
            c = ((c << s) | (c >> (28 - s))) & 0x0FFF_FFFF
            d = ((d << s) | (d >> (28 - s))) & 0x0FFF_FFFF
            let joined = UInt64(c) << 28 | UInt64(d)
            // PC-2: 48 bits, as eight 6-bit groups.
            var groups = [UInt32](repeating: 0, count: 8)
            for (j, from) in permutedChoice2.enumerated() {
                let bit = UInt32(truncatingIfNeeded: joined >> UInt64(56 - from) & 1)
                groups[j / 6] |= bit << UInt32(5 - j % 6)
            }
            words.append(groups[0] << 24 | groups[2] << 16 | groups[4] << 8 | groups[6])
            words.append(groups[1] << 24 | groups[3] << 16 | groups[5] << 8 | groups[7])
        }
        encrypt = words
        var reversed: [UInt32] = []
        reversed.reserveCapacity(32)
        for round in stride(from: 15, through: 0, by: -1) {
            reversed.append(words[2 * round])
            reversed.append(words[2 * round + 1])
        }
        decrypt = reversed
    }
}

enum DESCore {
    /// The 16 Feistel rounds on (L, R) after IP. On return (l, r) hold (L16, R16); the caller swaps before FP.
    @inline(__always)
    static func rounds(_ l: inout UInt32, _ r: inout UInt32, _ ks: [UInt32], _ sp: [UInt32]) {
        var left = l
        var right = r
        var i = 0
        while i < 32 {
            // E(R) ⊕ K: groups 1,3,5,7 are R rotated right by 27, 19, 11, 3 (FIPS 46-3 E table); rotating by 3
            // puts group 7 in the low byte and the others 8, 16, 24 bits higher. Groups 2,4,6,8 likewise from a
            // rotation by 31.
            let even = ((right >> 3) | (right << 29)) & 0x3F3F_3F3F ^ ks[i]
            let odd = ((right << 1) | (right >> 31)) & 0x3F3F_3F3F ^ ks[i + 1]
            let f =
                sp[Int(even >> 24)] | sp[128 + Int((even >> 16) & 0x3F)] | sp[256 + Int((even >> 8) & 0x3F)]
                | sp[384 + Int(even & 0x3F)] | sp[64 + Int(odd >> 24)] | sp[192 + Int((odd >> 16) & 0x3F)]
                | sp[320 + Int((odd >> 8) & 0x3F)] | sp[448 + Int(odd & 0x3F)]
            let next = left ^ f
            left = right
            right = next
            i += 2
        }
        l = left
        r = right
    }

    /// One DES block operation.
    @inline(__always)
    static func block(_ x: UInt64, _ ks: [UInt32]) -> UInt64 {
        let p = DESTables.permute(x, DESTables.ip)
        var l = UInt32(truncatingIfNeeded: p >> 32)
        var r = UInt32(truncatingIfNeeded: p)
        rounds(&l, &r, ks, DESTables.sp)
        return DESTables.permute(UInt64(r) << 32 | UInt64(l), DESTables.fp)
    }

    /// Three chained DES operations (Triple DES EDE) with a single IP and FP: FP∘IP is the identity between stages.
    @inline(__always)
    static func block3(_ x: UInt64, _ k1: [UInt32], _ k2: [UInt32], _ k3: [UInt32]) -> UInt64 {
        let sp = DESTables.sp
        let p = DESTables.permute(x, DESTables.ip)
        var l = UInt32(truncatingIfNeeded: p >> 32)
        var r = UInt32(truncatingIfNeeded: p)
        rounds(&l, &r, k1, sp)
        swap(&l, &r)
        rounds(&l, &r, k2, sp)
        swap(&l, &r)
        rounds(&l, &r, k3, sp)
        return DESTables.permute(UInt64(r) << 32 | UInt64(l), DESTables.fp)
    }
}

// MARK: - Modes (shared by the three ciphers)

/// A 64-bit block cipher of this file. Internal: the public types expose the modes.
/// A 64-bit block cipher of the DES family (``DES``, ``TripleDES``, ``DESX``), with ECB and unpadded CBC over it.
public protocol DESFamilyCipher: Sendable {
    /// The name errors use ("DES", "Triple DES", "DESX").
    static var algorithmName: StaticString { get }
    func encryptBlock(_ block: UInt64) -> UInt64
    func decryptBlock(_ block: UInt64) -> UInt64
}

extension DESFamilyCipher {
    /// ECB over whole 8-byte blocks (the block primitive, for known-answer tests).
    public func ecbEncrypt(_ data: [UInt8]) throws(FormatError) -> [UInt8] {
        try DESModes.ecb(self, encrypt: true, data, Self.algorithmName)
    }
    public func ecbDecrypt(_ data: [UInt8]) throws(FormatError) -> [UInt8] {
        try DESModes.ecb(self, encrypt: false, data, Self.algorithmName)
    }
    /// CBC without padding; `data` is a whole number of 8-byte blocks, `iv` 8 bytes.
    public func cbcEncrypt(_ data: [UInt8], iv: [UInt8]) throws(FormatError) -> [UInt8] {
        try DESModes.cbcEncrypt(self, data, iv: iv, Self.algorithmName)
    }
    public func cbcDecrypt(_ data: [UInt8], iv: [UInt8]) throws(FormatError) -> [UInt8] {
        try DESModes.cbcDecrypt(self, data, iv: iv, Self.algorithmName)
    }
}

enum DESModes {
    @inline(__always)
    static func load(_ d: [UInt8], _ at: Int) -> UInt64 {
        var v: UInt64 = 0
        for i in at..<(at + 8) { v = v << 8 | UInt64(d[i]) }
        return v
    }

    @inline(__always)
    static func store(_ v: UInt64, _ d: inout [UInt8], _ at: Int) {
        for i in 0..<8 { d[at + i] = UInt8(truncatingIfNeeded: v >> UInt64(56 - 8 * i)) }
    }

    static func checkBlocks(_ data: [UInt8], _ name: StaticString) throws(FormatError) {
        guard data.count % 8 == 0 else {
            throw FormatError(.malformed, "\(name) data of \(data.count) bytes is not a whole number of 8-byte blocks")
        }
    }

    static func checkIV(_ iv: [UInt8], _ name: StaticString) throws(FormatError) -> UInt64 {
        guard iv.count == 8 else { throw FormatError(.malformed, "a \(name) IV is \(iv.count) bytes, not 8") }
        return load(iv, 0)
    }

    static func ecb<C: DESFamilyCipher>(
        _ c: C, encrypt: Bool, _ data: [UInt8], _ name: StaticString
    ) throws(FormatError) -> [UInt8] {
        try checkBlocks(data, name)
        var out = data
        var i = 0
        while i < data.count {
            let x = load(data, i)
            store(encrypt ? c.encryptBlock(x) : c.decryptBlock(x), &out, i)
            i += 8
        }
        return out
    }

    static func cbcEncrypt<C: DESFamilyCipher>(
        _ c: C, _ data: [UInt8], iv: [UInt8], _ name: StaticString
    ) throws(FormatError) -> [UInt8] {
        try checkBlocks(data, name)
        var chain = try checkIV(iv, name)
        var out = data
        var i = 0
        while i < data.count {
            chain = c.encryptBlock(load(data, i) ^ chain)
            store(chain, &out, i)
            i += 8
        }
        return out
    }

    static func cbcDecrypt<C: DESFamilyCipher>(
        _ c: C, _ data: [UInt8], iv: [UInt8], _ name: StaticString
    ) throws(FormatError) -> [UInt8] {
        try checkBlocks(data, name)
        var chain = try checkIV(iv, name)
        var out = data
        var i = 0
        while i < data.count {
            let x = load(data, i)
            store(c.decryptBlock(x) ^ chain, &out, i)
            chain = x
            i += 8
        }
        return out
    }
}

// MARK: - DES

/// Single DES (FIPS 46-3). Broken (56-bit key); here only for legacy formats.
///
/// ```swift
/// let plain = try DES(key: key8).cbcDecrypt(ciphertext, iv: iv8)
/// ```
public struct DES: Sendable, DESFamilyCipher {
    public static let algorithmName: StaticString = "DES"
    let schedule: DESKeySchedule

    /// - Parameter key: 8 bytes; parity bits are ignored.
    /// - Throws: ``FormatError/Code/unsupportedAlgorithm`` when the key is not 8 bytes.
    public init(key: [UInt8]) throws(FormatError) {
        guard key.count == 8 else { throw FormatError(.unsupportedAlgorithm, "a DES key is \(key.count) bytes, not 8") }
        schedule = DESKeySchedule(key[...])
    }

    public func encryptBlock(_ block: UInt64) -> UInt64 { DESCore.block(block, schedule.encrypt) }
    public func decryptBlock(_ block: UInt64) -> UInt64 { DESCore.block(block, schedule.decrypt) }

}

// MARK: - Triple DES

/// Triple DES, EDE (NIST SP 800-67): E = E_K3(D_K2(E_K1(x))). 24-byte keys are K1‖K2‖K3 (keying option 1 or 2);
/// 16-byte keys are K1‖K2 with K3 = K1 (keying option 2, "two-key 3DES").
///
/// ```swift
/// let plain = try TripleDES(key: key24).cbcDecrypt(ciphertext, iv: iv8)
/// ```
public struct TripleDES: Sendable, DESFamilyCipher {
    public static let algorithmName: StaticString = "Triple DES"
    let k1: DESKeySchedule
    let k2: DESKeySchedule
    let k3: DESKeySchedule

    /// - Parameter key: 24 bytes (K1‖K2‖K3) or 16 bytes (K1‖K2, K3 = K1); parity bits are ignored.
    /// - Throws: ``FormatError/Code/unsupportedAlgorithm`` for other lengths.
    public init(key: [UInt8]) throws(FormatError) {
        switch key.count {
        case 24:
            k1 = DESKeySchedule(key[0..<8])
            k2 = DESKeySchedule(key[8..<16])
            k3 = DESKeySchedule(key[16..<24])
        case 16:
            k1 = DESKeySchedule(key[0..<8])
            k2 = DESKeySchedule(key[8..<16])
            k3 = k1
        default:
            throw FormatError(.unsupportedAlgorithm, "a Triple DES key is \(key.count) bytes, not 16 or 24")
        }
    }

    public func encryptBlock(_ block: UInt64) -> UInt64 { DESCore.block3(block, k1.encrypt, k2.decrypt, k3.encrypt) }
    public func decryptBlock(_ block: UInt64) -> UInt64 { DESCore.block3(block, k3.decrypt, k2.encrypt, k1.decrypt) }

}

// MARK: - DESX

/// DESX (Rivest): E(x) = K2 ⊕ DES_K(x ⊕ K1), with input whitening K1 and output whitening K2.
///
/// ``init(key:)`` takes a 16-byte Windows EFS DESX FEK and expands it as `windows-efs-metadata.md` §4.5 describes
/// (ntfsdecrypt `ntfs_desx_key_expand`):
/// - `md = MD5(key16 ‖ "Dan Simon  \0")`; the DES key is `md[0..<4] ⊕ md[4..<8] ‖ md[8..<12] ⊕ md[12..<16]`;
/// - `md2 = MD5(key16 ‖ "Scott Field\0")`; output whitening = `md2[0..<8]`, input whitening = `md2[8..<16]`.
///
/// ```swift
/// let plain = try DESX(key: fek16).cbcDecrypt(ciphertext, iv: iv8)
/// ```
public struct DESX: Sendable, DESFamilyCipher {
    public static let algorithmName: StaticString = "DESX"
    let des: DESKeySchedule
    let inputWhitening: UInt64
    let outputWhitening: UInt64

    /// The two 12-byte salts of the Windows EFS DESX key expansion (each includes its terminating NUL).
    static let desKeySalt: [UInt8] = Array("Dan Simon  ".utf8) + [0]
    static let whiteningSalt: [UInt8] = Array("Scott Field".utf8) + [0]

    /// Expands a 16-byte Windows EFS DESX FEK (§4.5 "DESX key expansion").
    ///
    /// - Throws: ``FormatError/Code/unsupportedAlgorithm`` when the key is not 16 bytes.
    public init(key: [UInt8]) throws(FormatError) {
        guard key.count == 16 else {
            throw FormatError(.unsupportedAlgorithm, "a DESX key is \(key.count) bytes, not 16")
        }
        let md = LegacyCrypto.md5(key + Self.desKeySalt)
        var desKey = [UInt8](repeating: 0, count: 8)
        for j in 0..<4 {
            desKey[j] = md[j] ^ md[j + 4]
            desKey[j + 4] = md[j + 8] ^ md[j + 12]
        }
        let md2 = LegacyCrypto.md5(key + Self.whiteningSalt)
        try self.init(desKey: desKey, inputWhitening: Array(md2[8..<16]), outputWhitening: Array(md2[0..<8]))
    }

    /// DESX from its three parts, each 8 bytes.
    public init(desKey: [UInt8], inputWhitening: [UInt8], outputWhitening: [UInt8]) throws(FormatError) {
        guard desKey.count == 8, inputWhitening.count == 8, outputWhitening.count == 8 else {
            throw FormatError(.unsupportedAlgorithm, "DESX needs an 8-byte DES key and two 8-byte whitening keys")
        }
        des = DESKeySchedule(desKey[...])
        self.inputWhitening = DESModes.load(inputWhitening, 0)
        self.outputWhitening = DESModes.load(outputWhitening, 0)
    }

    public func encryptBlock(_ block: UInt64) -> UInt64 {
        DESCore.block(block ^ inputWhitening, des.encrypt) ^ outputWhitening
    }
    public func decryptBlock(_ block: UInt64) -> UInt64 {
        DESCore.block(block ^ outputWhitening, des.decrypt) ^ inputWhitening
    }

}
