// SPDX-License-Identifier: Apache-2.0
// This file is part of swift-efs. See LICENSE for details.

import Crypto
import SwiftASN1

/// The password-based encryption schemes of PKCS#12 privacy mode: PBES2 (RFC 8018 §6.2) and the legacy PKCS#12
/// PBEs (RFC 7292 appendix C).
extension PKCS12File {
    /// The legacy PKCS#12 PBEs (RFC 7292 appendix C), all keyed with the PKCS#12 KDF over SHA-1.
    enum LegacyPBE: CaseIterable {
        case tripleDES3Key, tripleDES2Key, rc2128, rc240

        init?(oid: ASN1ObjectIdentifier) {
            switch oid {
            case [1, 2, 840, 113_549, 1, 12, 1, 3]: self = .tripleDES3Key
            case [1, 2, 840, 113_549, 1, 12, 1, 4]: self = .tripleDES2Key
            case [1, 2, 840, 113_549, 1, 12, 1, 5]: self = .rc2128
            case [1, 2, 840, 113_549, 1, 12, 1, 6]: self = .rc240
            default: return nil
            }
        }

        var name: String {
            switch self {
            case .tripleDES3Key: "pbeWithSHAAnd3-KeyTripleDES-CBC"
            case .tripleDES2Key: "pbeWithSHAAnd2-KeyTripleDES-CBC"
            case .rc2128: "pbeWithSHAAnd128BitRC2-CBC"
            case .rc240: "pbewithSHAAnd40BitRC2-CBC"
            }
        }

        /// Key length in bytes (RFC 7292 appendix C: 3-key 3DES 24, 2-key 3DES 16, RC2 16 or 5).
        var keySize: Int {
            switch self {
            case .tripleDES3Key: 24
            case .tripleDES2Key: 16
            case .rc2128: 16
            case .rc240: 5
            }
        }

        func decrypt(_ ciphertext: [UInt8], key: [UInt8], iv: [UInt8]) throws(FormatError) -> [UInt8] {
            guard !ciphertext.isEmpty, ciphertext.count % 8 == 0 else { throw .authenticationFailed }
            switch self {
            case .tripleDES3Key, .tripleDES2Key:
                var plain = try TripleDES(key: key).cbcDecrypt(ciphertext, iv: iv)
                defer { Zeroing.clear(&plain) }
                return try PKCS7Padding.remove(from: plain, blockSize: 8)
            case .rc2128, .rc240:
                // RFC 7292 appendix C: the effective key length is the key length.
                return try RC2(key: key, effectiveKeyBits: keySize * 8).cbcDecrypt(ciphertext, iv: iv)
            }
        }
    }

    /// Decrypts `ciphertext` with the scheme an AlgorithmIdentifier names, and returns the plaintext and the
    /// scheme's name.
    ///
    /// - Throws: ``FormatError/Code/authenticationFailed`` when the padding is wrong (a wrong password);
    ///   `.unsupportedAlgorithm` naming the OID of any other scheme; `.limitExceeded` for iteration counts.
    static func decrypt(
        _ ciphertext: [UInt8], algorithm node: ASN1Node, password: Password, into parsed: Parsed
    ) throws -> (plain: [UInt8], scheme: String) {
        parsed.encryptedItems += 1
        guard parsed.encryptedItems <= maximumEncryptedItems else {
            throw FormatError.limitExceeded(
                "PKCS#12 encrypted items", value: UInt64(parsed.encryptedItems), maximum: maximumEncryptedItems)
        }
        let (oid, params) = try BER.sequence(node, identifier: .sequence) { a -> (ASN1ObjectIdentifier, ASN1Node?) in
            guard let o = a.next() else { throw FormatError.malformed("encryption AlgorithmIdentifier is empty") }
            let params = a.next()
            guard a.next() == nil else { throw FormatError.malformed("encryption AlgorithmIdentifier has extra fields") }
            return (try ASN1ObjectIdentifier(berEncoded: o), params)
        }
        if oid == PBES2.oid {
            guard let params else { throw FormatError.malformed("PBES2 has no parameters") }
            let e = try PBES2.parse(parameters: params, ciphertext: ciphertext)
            try parsed.spend(e.iterations)
            let plain = try PBES2.decrypt(e, password: password.utf8, allowedIterations: 1...maximumIterations)
            let scheme = "PBES2 (PBKDF2-\(AlgorithmNames.short(e.prf)), \(AlgorithmNames.short(e.cipher)))"
            parsed.note(scheme, legacy: e.cipher == PBES2.oidDESEDE3CBC)
            return (plain, scheme)
        }
        guard let pbe = LegacyPBE(oid: oid) else {
            throw FormatError(.unsupportedAlgorithm, "PKCS#12 encryption \(AlgorithmNames.name(oid)) is not supported")
        }
        // pkcs-12PbeParams ::= SEQUENCE { salt OCTET STRING, iterations INTEGER } (RFC 7292 appendix C).
        guard let params else { throw FormatError.malformed("\(pbe.name) has no parameters") }
        let (salt, iterations) = try BER.sequence(params, identifier: .sequence) { p -> ([UInt8], Int) in
            guard let saltNode = p.next(), let iterNode = p.next(), p.next() == nil else {
                throw FormatError.malformed("\(pbe.name) parameters are malformed")
            }
            return (Array(try ASN1OctetString(berEncoded: saltNode).bytes), try Int(berEncoded: iterNode))
        }
        guard salt.count <= maximumSaltSize else {
            throw FormatError.limitExceeded("PBE salt", value: UInt64(salt.count), maximum: maximumSaltSize)
        }
        // Checked before the (slow) key derivation: CBC ciphertext is whole 8-byte blocks.
        guard !ciphertext.isEmpty, ciphertext.count % 8 == 0 else { throw FormatError.authenticationFailed }
        try parsed.spend(iterations)
        // RFC 7292 B.2/B.3: the key with ID 1 and the IV with ID 2, from the BMPString password.
        var key = PKCS12KDF.derive(
            Insecure.SHA1.self, id: .key, password: password.bmp, salt: salt, iterations: iterations, count: pbe.keySize)
        defer { Zeroing.clear(&key) }
        let iv = PKCS12KDF.derive(Insecure.SHA1.self, id: .iv, password: password.bmp, salt: salt, iterations: iterations, count: 8)
        let plain = try pbe.decrypt(ciphertext, key: key, iv: iv)
        parsed.note(pbe.name, legacy: true)
        return (plain, pbe.name)
    }
}
