// SPDX-License-Identifier: Apache-2.0
// This file is part of swift-efs. See LICENSE for details.

import Foundation
import Testing

@testable import EFSCore

private func hex(_ s: String) -> [UInt8] { Hex.decode(s)! }

private func legacyVectors(_ section: String) throws -> [[String: Any]] {
    let url = try #require(
        Bundle.module.url(forResource: "legacy-ciphers", withExtension: "json", subdirectory: "Vectors"))
    let doc = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any])
    let list = try #require(doc[section] as? [[String: Any]])
    #expect(!list.isEmpty)
    return list
}

private func field(_ v: [String: Any], _ name: String) -> [UInt8] { hex(v[name] as! String) }

@Suite("Legacy ciphers (DES, Triple DES, DESX) and primitives")
struct LegacyCipherTests {
    // MARK: - Published known answers (FIPS 81 / textbook / NIST)

    @Test("DES: classic known answers")
    func desClassic() throws {
        // FIPS 81 appendix B / the classic "Now is the time for all " example, ECB.
        let des = try DES(key: hex("0123456789ABCDEF"))
        #expect(try des.ecbEncrypt(Array("Now is t".utf8)) == hex("3FA40E8A984D4815"))
        let text = Array("Now is the time for all ".utf8)
        #expect(try des.ecbEncrypt(text) == hex("3FA40E8A984D48156A271787AB8883F9893D51EC4B563B53"))
        // FIPS 81 CBC example, IV 1234567890ABCDEF.
        let cbc = try des.cbcEncrypt(text, iv: hex("1234567890ABCDEF"))
        #expect(cbc == hex("E5C7CDDE872BF27C43E934008C389C0F683788499A7C05F6"))
        #expect(try des.cbcDecrypt(cbc, iv: hex("1234567890ABCDEF")) == text)
        // The worked example of Grabbe's "DES algorithm illustrated".
        #expect(try DES(key: hex("133457799BBCDFF1")).ecbEncrypt(hex("0123456789ABCDEF")) == hex("85E813540F0AB405"))
        // NIST SP 800-17 variable-plaintext test, first entry: key 0101…01, plaintext 8000…00.
        #expect(try DES(key: hex("0101010101010101")).ecbEncrypt(hex("8000000000000000")) == hex("95F8A5E5DD31D900"))
    }

    @Test("DES: parity bits are ignored")
    func desParity() throws {
        let a = try DES(key: hex("0123456789ABCDEF")).ecbEncrypt(hex("4E6F772069732074"))
        let b = try DES(key: hex("0022446688AACCEE")).ecbEncrypt(hex("4E6F772069732074"))
        #expect(a == b)
    }

    @Test("Triple DES: one-key 3DES equals DES, and NIST SP 800-67 example")
    func tripleDESKnown() throws {
        let k = hex("0123456789ABCDEF")
        let block = hex("4E6F772069732074")
        #expect(try TripleDES(key: k + k + k).ecbEncrypt(block) == DES(key: k).ecbEncrypt(block))
        #expect(try TripleDES(key: k + k).ecbEncrypt(block) == DES(key: k).ecbEncrypt(block))
        // NIST SP 800-67 rev. 1 appendix B example ("The qufck brown fox jump"), ECB.
        let key = hex("0123456789ABCDEF23456789ABCDEF01456789ABCDEF0123")
        let pt = Array("The qufck brown fox jump".utf8)
        #expect(try TripleDES(key: key).ecbEncrypt(pt) == hex("A826FD8CE53B855FCCE21C8112256FE668D5C05DD9B6B900"))
    }

    // MARK: - Vectors from Python `cryptography` (make-legacy-cipher-vectors.py)

    @Test("DES ECB vectors")
    func desVectors() throws {
        for v in try legacyVectors("des_ecb") {
            let des = try DES(key: field(v, "key"))
            #expect(try des.ecbEncrypt(field(v, "plaintext")) == field(v, "ciphertext"))
            #expect(try des.ecbDecrypt(field(v, "ciphertext")) == field(v, "plaintext"))
        }
    }

    @Test("Triple DES CBC vectors, 24- and 16-byte keys")
    func tripleDESVectors() throws {
        var sawShort = false
        for v in try legacyVectors("tdes_cbc") {
            let key = field(v, "key")
            sawShort = sawShort || key.count == 16
            let c = try TripleDES(key: key)
            #expect(try c.cbcEncrypt(field(v, "plaintext"), iv: field(v, "iv")) == field(v, "ciphertext"))
            #expect(try c.cbcDecrypt(field(v, "ciphertext"), iv: field(v, "iv")) == field(v, "plaintext"))
        }
        #expect(sawShort)
    }

    @Test("DESX CBC vectors: raw parts and the Windows EFS key expansion")
    func desxVectors() throws {
        for v in try legacyVectors("desx_raw_cbc") {
            let c = try DESX(
                desKey: field(v, "key"), inputWhitening: field(v, "input_whitening"),
                outputWhitening: field(v, "output_whitening"))
            #expect(try c.cbcEncrypt(field(v, "plaintext"), iv: field(v, "iv")) == field(v, "ciphertext"))
            #expect(try c.cbcDecrypt(field(v, "ciphertext"), iv: field(v, "iv")) == field(v, "plaintext"))
        }
        for v in try legacyVectors("desx_efs_cbc") {
            let c = try DESX(key: field(v, "key"))
            #expect(try c.cbcEncrypt(field(v, "plaintext"), iv: field(v, "iv")) == field(v, "ciphertext"))
            #expect(try c.cbcDecrypt(field(v, "ciphertext"), iv: field(v, "iv")) == field(v, "plaintext"))
        }
    }

    @Test("DESX with zero whitening is DES")
    func desxDegenerates() throws {
        let k = hex("0123456789ABCDEF"), zero = [UInt8](repeating: 0, count: 8)
        let data = Array("Now is the time for all ".utf8)
        #expect(
            try DESX(desKey: k, inputWhitening: zero, outputWhitening: zero).ecbEncrypt(data)
                == DES(key: k).ecbEncrypt(data))
    }

    @Test("AES-CBC without padding vectors")
    func aesVectors() throws {
        for v in try legacyVectors("aes_cbc") {
            let (k, iv) = (field(v, "key"), field(v, "iv"))
            #expect(try LegacyCrypto.aesCBCEncrypt(key: k, iv: iv, field(v, "plaintext")) == field(v, "ciphertext"))
            #expect(try LegacyCrypto.aesCBCDecrypt(key: k, iv: iv, field(v, "ciphertext")) == field(v, "plaintext"))
        }
        #expect(
            try LegacyCrypto.aesCBCDecrypt(
                key: [UInt8](repeating: 1, count: 32), iv: [UInt8](repeating: 0, count: 16), []) == [])
    }

    @Test("PBKDF2, HMAC and digest vectors")
    func kdfVectors() throws {
        for v in try legacyVectors("pbkdf2") {
            let out = try LegacyCrypto.pbkdf2(
                sha256: (v["hash"] as! String) == "sha256", password: field(v, "password"), salt: field(v, "salt"),
                iterations: v["iterations"] as! Int, length: v["length"] as! Int)
            #expect(out == field(v, "output"))
        }
        for v in try legacyVectors("hmac") {
            let mac =
                (v["hash"] as! String) == "sha256"
                ? LegacyCrypto.hmacSHA256(key: field(v, "key"), field(v, "message"))
                : LegacyCrypto.hmacSHA1(key: field(v, "key"), field(v, "message"))
            #expect(mac == field(v, "mac"))
        }
        for v in try legacyVectors("digest") {
            let m = field(v, "message")
            #expect(LegacyCrypto.md5(m) == field(v, "md5"))
            #expect(LegacyCrypto.sha1(m) == field(v, "sha1"))
            #expect(LegacyCrypto.sha256(m) == field(v, "sha256"))
        }
        // RFC 6070 test 2.
        #expect(
            try LegacyCrypto.pbkdf2(
                sha256: false, password: Array("password".utf8), salt: Array("salt".utf8), iterations: 2, length: 20)
                == hex("ea6c014dc72d6f8ccd1ed92ace1d41f0d8de8957"))
    }

    // MARK: - Round trips and rejections

    @Test("CBC round trips over many lengths", arguments: [0, 8, 16, 64, 512, 4096])
    func roundTrips(length: Int) throws {
        let data = (0..<length).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }
        let iv = hex("1122334455667788")
        let ciphers: [any DESFamilyCipher] = [
            try DES(key: hex("0123456789ABCDEF")), try TripleDES(key: (0..<24).map { UInt8($0) }),
            try TripleDES(key: (0..<16).map { UInt8($0 * 3) }), try DESX(key: (0..<16).map { UInt8($0) }),
        ]
        for c in ciphers {
            let enc = try DESModes.cbcEncrypt(c, data, iv: iv, "test")
            #expect(enc.count == length)
            if length > 0 { #expect(enc != data) }
            #expect(try DESModes.cbcDecrypt(c, enc, iv: iv, "test") == data)
        }
    }

    @Test("bad lengths are refused with clear errors")
    func rejections() {
        #expect(throws: FormatError(.unsupportedAlgorithm, "")) { try DES(key: [1, 2, 3]) }
        #expect(throws: FormatError(.unsupportedAlgorithm, "")) { try TripleDES(key: [UInt8](repeating: 0, count: 8)) }
        #expect(throws: FormatError(.unsupportedAlgorithm, "")) { try DESX(key: [UInt8](repeating: 0, count: 24)) }
        #expect(throws: FormatError(.malformed, "")) {
            try TripleDES(key: [UInt8](repeating: 0, count: 24)).cbcDecrypt(
                [1, 2, 3], iv: [UInt8](repeating: 0, count: 8))
        }
        #expect(throws: FormatError(.malformed, "")) {
            try TripleDES(key: [UInt8](repeating: 0, count: 24)).cbcDecrypt([UInt8](repeating: 0, count: 8), iv: [0])
        }
        #expect(throws: FormatError(.malformed, "")) {
            try LegacyCrypto.aesCBCDecrypt(
                key: [UInt8](repeating: 0, count: 32), iv: [UInt8](repeating: 0, count: 16), [1])
        }
        #expect(throws: FormatError(.unsupportedAlgorithm, "")) {
            try LegacyCrypto.aesCBCDecrypt(key: [1], iv: [UInt8](repeating: 0, count: 16), [])
        }
        #expect(throws: FormatError(.limitExceeded, "")) {
            try LegacyCrypto.pbkdf2(sha256: true, password: [], salt: [], iterations: 0, length: 32)
        }
        #expect(throws: FormatError(.limitExceeded, "")) {
            try LegacyCrypto.pbkdf2(sha256: true, password: [], salt: [], iterations: 1, length: 100_000)
        }
    }

    // MARK: - RSA PKCS#1 v1.5

    @Test("RSA PKCS#1 v1.5 round trip; wrong key and modified ciphertext fail opaquely")
    func rsaPKCS1() throws {
        let key = try UserPrivateKey.generateLegacyRSA(bits: 1024)
        let other = try UserPrivateKey.generateLegacyRSA(bits: 1024)
        let message = Array("a file encryption key blob".utf8)
        let ct = try key.legacyRSAPublicKey().encryptPKCS1v15(message)
        #expect(ct.count == 128)
        #expect(try key.decryptPKCS1v15(ct) == message)
        #expect(throws: FormatError.authenticationFailed) { try other.decryptPKCS1v15(ct) }
        #expect(throws: FormatError.authenticationFailed) { try key.decryptPKCS1v15(Array(ct.dropFirst())) }
        // Re-parsed from PKCS#8 DER through the legacy parser (accepts 1024 bits; parse(der:) does not).
        let reparsed = try UserPrivateKey.parseLegacyRSA(der: key.pkcs8DER())
        #expect(try reparsed.decryptPKCS1v15(ct) == message)
        #expect(throws: FormatError.self) { _ = try UserPrivateKey.parse(der: key.pkcs8DER()) }
        let ec = try UserPrivateKey.generate(.p256)
        #expect(throws: FormatError(.unsupportedAlgorithm, "")) { try ec.decryptPKCS1v15(ct) }
        #expect(throws: FormatError(.unsupportedAlgorithm, "")) {
            _ = try UserPrivateKey.parseLegacyRSA(der: [0x30, 0x00])
        }
    }
}
