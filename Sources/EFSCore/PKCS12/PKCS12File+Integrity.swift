// SPDX-License-Identifier: Apache-2.0
// This file is part of swift-efs. See LICENSE for details.

import Crypto
import SwiftASN1

/// Password integrity mode (RFC 7292 §5.1): `MacData` with HMAC keyed by the PKCS#12 KDF, or PBMAC1 (RFC 9579).
extension PKCS12File {
    /// The hashes of `MacData` (RFC 7292 §5.1 and appendix B.4: the KDF uses the MAC's hash).
    enum MACHash: CaseIterable {
        case sha1, sha256, sha384, sha512

        init?(oid: ASN1ObjectIdentifier) {
            switch oid {
            case [1, 3, 14, 3, 2, 26]: self = .sha1
            case [2, 16, 840, 1, 101, 3, 4, 2, 1]: self = .sha256
            case [2, 16, 840, 1, 101, 3, 4, 2, 2]: self = .sha384
            case [2, 16, 840, 1, 101, 3, 4, 2, 3]: self = .sha512
            default: return nil
            }
        }

        /// For PBMAC1's `messageAuthScheme` (RFC 8018 B.1 OIDs).
        init?(hmacOID oid: ASN1ObjectIdentifier) {
            switch oid {
            case PBES2.oidHMACSHA1: self = .sha1
            case PBES2.oidHMACSHA256: self = .sha256
            case PBES2.oidHMACSHA384: self = .sha384
            case PBES2.oidHMACSHA512: self = .sha512
            default: return nil
            }
        }

        var name: String {
            switch self {
            case .sha1: "SHA1"
            case .sha256: "SHA256"
            case .sha384: "SHA384"
            case .sha512: "SHA512"
            }
        }

        func kdf(_ id: PKCS12KDF.Purpose, password: [UInt8], salt: [UInt8], iterations: Int, count: Int) -> [UInt8] {
            switch self {
            case .sha1: PKCS12KDF.derive(Insecure.SHA1.self, id: id, password: password, salt: salt, iterations: iterations, count: count)
            case .sha256: PKCS12KDF.derive(SHA256.self, id: id, password: password, salt: salt, iterations: iterations, count: count)
            case .sha384: PKCS12KDF.derive(SHA384.self, id: id, password: password, salt: salt, iterations: iterations, count: count)
            case .sha512: PKCS12KDF.derive(SHA512.self, id: id, password: password, salt: salt, iterations: iterations, count: count)
            }
        }

        var byteCount: Int {
            switch self {
            case .sha1: 20
            case .sha256: 32
            case .sha384: 48
            case .sha512: 64
            }
        }

        func hmac(key: SymmetricKey, _ data: [UInt8]) -> [UInt8] {
            switch self {
            case .sha1: Array(HMAC<Insecure.SHA1>.authenticationCode(for: data, using: key))
            case .sha256: Array(HMAC<SHA256>.authenticationCode(for: data, using: key))
            case .sha384: Array(HMAC<SHA384>.authenticationCode(for: data, using: key))
            case .sha512: Array(HMAC<SHA512>.authenticationCode(for: data, using: key))
            }
        }
    }

    /// PBMAC1-params (RFC 8018 A.5, RFC 9579 §3): `SEQUENCE { keyDerivationFunc, messageAuthScheme }`.
    static func parsePBMAC1(_ node: ASN1Node?) throws(FormatError) -> (PBES2.PBKDF2Parameters, MACHash) {
        guard let node else { throw .malformed("PBMAC1 has no parameters") }
        return try asn1("PBMAC1 parameters") {
            try BER.sequence(node, identifier: .sequence) { p in
                guard let kdfNode = p.next(), let macNode = p.next(), p.next() == nil else {
                    throw FormatError.malformed("PBMAC1 parameters are malformed")
                }
                let kdf = try BER.sequence(kdfNode, identifier: .sequence) { k in
                    guard let o = k.next(), let params = k.next(), k.next() == nil else {
                        throw FormatError.malformed("PBMAC1 key derivation is malformed")
                    }
                    let oid = try ASN1ObjectIdentifier(berEncoded: o)
                    guard oid == PBES2.oidPBKDF2 else {
                        throw FormatError(.unsupportedAlgorithm, "PBMAC1 key derivation \(AlgorithmNames.name(oid)) is not PBKDF2")
                    }
                    return try PBES2.parsePBKDF2(params)
                }
                let mac = try BER.sequence(macNode, identifier: .sequence) { m in
                    guard let o = m.next() else { throw FormatError.malformed("PBMAC1 MAC scheme is empty") }
                    if let params = m.next(), params.identifier != .null {
                        throw FormatError.malformed("PBMAC1 MAC parameters are not NULL")
                    }
                    guard m.next() == nil else { throw FormatError.malformed("PBMAC1 MAC scheme has extra fields") }
                    let oid = try ASN1ObjectIdentifier(berEncoded: o)
                    guard let h = MACHash(hmacOID: oid) else {
                        throw FormatError(.unsupportedAlgorithm, "PBMAC1 MAC \(AlgorithmNames.name(oid)) is not supported")
                    }
                    return h
                }
                // RFC 9579 §5: keyLength MUST be present.
                guard let kl = kdf.keyLength else { throw FormatError.malformed("PBMAC1 PBKDF2 has no key length") }
                guard (1...mac.byteCount * 4).contains(kl) else {
                    throw FormatError.malformed("PBMAC1 key length \(kl) is out of range")
                }
                return (kdf, mac)
            }
        }
    }

    static func describeMAC(_ mac: MacData) throws(FormatError) -> Integrity {
        if mac.algorithm == oidPBMAC1 {
            let (kdf, h) = try parsePBMAC1(mac.parameters)
            return .pbmac1(mac: "HMAC-\(h.name)", iterations: kdf.iterations)
        }
        guard let h = MACHash(oid: mac.algorithm) else {
            throw FormatError(.unsupportedAlgorithm, "PKCS#12 MAC hash \(AlgorithmNames.name(mac.algorithm)) is not supported")
        }
        return .hmac(hash: h.name, iterations: mac.iterations)
    }

    /// Whether the MAC verifies with `password` (RFC 7292 §5.1; RFC 9579 for PBMAC1).
    static func verifyMAC(_ mac: MacData, authSafe: [UInt8], password: Password) throws(FormatError) -> Bool {
        let computed: [UInt8]
        if mac.algorithm == oidPBMAC1 {
            let (kdf, h) = try parsePBMAC1(mac.parameters)
            let key = try PBES2.pbkdf2(
                kdf, password: password.utf8, count: kdf.keyLength ?? h.byteCount, allowedIterations: 1...maximumIterations)
            computed = h.hmac(key: key, authSafe)
        } else {
            guard let h = MACHash(oid: mac.algorithm) else {
                throw FormatError(.unsupportedAlgorithm, "PKCS#12 MAC hash \(AlgorithmNames.name(mac.algorithm)) is not supported")
            }
            // RFC 7292 B.4: the MAC key is derived with ID 3, as long as the hash's output.
            var keyBytes = h.kdf(.mac, password: password.bmp, salt: mac.salt, iterations: mac.iterations, count: h.byteCount)
            let key = SymmetricKey(data: keyBytes)
            Zeroing.clear(&keyBytes)
            computed = h.hmac(key: key, authSafe)
        }
        return constantTimeEquals(computed, mac.digest)
    }
}
