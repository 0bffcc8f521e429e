// SPDX-License-Identifier: Apache-2.0
// This file is part of swift-efs. See LICENSE for details.

import Crypto

/// The PKCS#12 key derivation function (RFC 7292 appendix B.2), which derives the keys and IVs of the legacy
/// `pbeWithSHAAnd…` schemes and the MAC key of `MacData`.
///
/// It is not a good KDF (RFC 7292 B.1 says so itself); it is here only to read existing `.pfx` files.
///
/// ```swift
/// let macKey = PKCS12KDF.derive(Insecure.SHA1.self, id: .mac, password: bmpPassword, salt: salt,
///                               iterations: 2048, count: 20)
/// ```
enum PKCS12KDF {
    /// The "ID" byte (RFC 7292 B.3): what the derived bytes are for.
    enum Purpose: UInt8 {
        /// ID 1: key material for encryption or decryption.
        case key = 1
        /// ID 2: an initialisation vector.
        case iv = 2
        /// ID 3: an integrity (MAC) key.
        case mac = 3
    }

    /// The password as RFC 7292 B.1 formats it: a BMPString (UTF-16 big-endian) with a two-byte NUL terminator.
    ///
    /// An empty password becomes the two NUL bytes alone. Bytes that are not UTF-8 are taken one code unit each
    /// (what openssl does for them). Note that a "null" password is not this: it is the empty byte string.
    static func bmpPassword(_ utf8: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(utf8.count * 2 + 2)
        if let s = String(validating: utf8, as: UTF8.self) {
            for unit in s.utf16 { out += [UInt8(unit >> 8), UInt8(unit & 0xFF)] }
        } else {
            for b in utf8 { out += [0, b] }
        }
        return out + [0, 0]
    }

    /// Derives `count` bytes (RFC 7292 B.2).
    ///
    /// - Parameters:
    ///   - hash: H, with u = its output size and v = its block size.
    ///   - password: the formatted password (see ``bmpPassword(_:)``), or empty for a null password.
    ///   - iterations: r, at least 1; callers bound it.
    static func derive<H: HashFunction>(
        _ hash: H.Type, id: Purpose, password: [UInt8], salt: [UInt8], iterations: Int, count: Int
    ) -> [UInt8] {
        precondition(iterations >= 1 && count >= 0)
        let v = H.blockByteCount
        let u = H.Digest.byteCount
        // 1. D = v copies of ID.
        let d = [UInt8](repeating: id.rawValue, count: v)
        // 2.–4. S and P are the salt and password repeated to a multiple of v bytes (empty if empty); I = S || P.
        func stretch(_ x: [UInt8]) -> [UInt8] {
            guard !x.isEmpty else { return [] }
            let n = v * ((x.count + v - 1) / v)
            return (0..<n).map { x[$0 % x.count] }
        }
        var i = stretch(salt) + stretch(password)
        defer { for j in i.indices { i[j] = 0 } }
        // 5. c = ceil(n / u).
        let c = (count + u - 1) / u
        var out: [UInt8] = []
        out.reserveCapacity(c * u)
        for block in 0..<c {
            // 6a. A_i = H^r(D || I).
            var h = H()
            h.update(data: d)
            h.update(data: i)
            var digest = h.finalize()
            // Invariant: the buffer is the digest's own bytes and is only read inside the closure.
            for _ in 1..<iterations {
                digest = digest.withUnsafeBytes { raw in
                    var next = H()
                    next.update(bufferPointer: raw)
                    return next.finalize()
                }
            }
            let a = Array(digest)
            out += a
            if block == c - 1 { break }
            // 6b. B = A_i repeated to v bytes. 6c. Each v-byte block I_j of I becomes (I_j + B + 1) mod 2^(8v).
            let b = (0..<v).map { a[$0 % u] }
            for start in stride(from: 0, to: i.count, by: v) {
                var carry: UInt16 = 1
                for k in stride(from: v - 1, through: 0, by: -1) {
                    let sum = UInt16(i[start + k]) + UInt16(b[k]) + carry
                    i[start + k] = UInt8(truncatingIfNeeded: sum)
                    carry = sum >> 8
                }
            }
        }
        // 7.–8. The first n bytes of A_1 || A_2 || … || A_c.
        return Array(out.prefix(count))
    }
}
