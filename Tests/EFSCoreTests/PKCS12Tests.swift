// SPDX-License-Identifier: Apache-2.0
// This file is part of swift-efs. See LICENSE for details.

import Crypto
import Foundation
import SwiftASN1
import Testing

@testable import EFSCore

private func hex(_ s: String) -> [UInt8] { Hex.decode(s)! }
private func pw(_ s: String) -> Passphrase { Passphrase(Array(s.utf8)) }

/// The fixtures of `Vectors/PKCS12/` (made by `make-pkcs12-fixtures.py`; see the README there).
private enum Fixtures {
    static func data(_ name: String) throws -> [UInt8] {
        let base = (name as NSString).deletingPathExtension, ext = (name as NSString).pathExtension
        let url = try #require(Bundle.module.url(forResource: base, withExtension: ext, subdirectory: "Vectors/PKCS12"))
        return Array(try Data(contentsOf: url))
    }

    static func json(_ name: String) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(data(name))) as? [String: Any])
    }

    struct Expected {
        struct Key {
            var spkiSHA256: String
            var certificate: String
            var friendlyName: String?
            var localKeyID: String?
        }
        var file: String
        var password: String
        var keys: [Key]
        var certificates: [String]
        var integrity: String
        var legacy: Bool
        var schemes: [String]?
    }

    static func expected() throws -> [Expected] {
        let doc = try json("expected.json")
        let files = try #require(doc["files"] as? [[String: Any]])
        return files.map { f in
            Expected(
                file: f["file"] as! String, password: f["password"] as! String,
                keys: (f["keys"] as! [[String: Any]]).map {
                    Expected.Key(
                        spkiSHA256: $0["spkiSHA256"] as! String, certificate: $0["certificate"] as! String,
                        friendlyName: $0["friendlyName"] as? String, localKeyID: $0["localKeyID"] as? String)
                },
                certificates: f["certificates"] as! [String], integrity: f["integrity"] as! String,
                legacy: f["legacyEncryption"] as! Bool, schemes: f["schemes"] as? [String])
        }
    }
}

/// Minimal DER building for hand-made hostile inputs.
private enum D {
    static func tlv(_ tag: UInt8, _ content: [UInt8]) -> [UInt8] {
        var len: [UInt8]
        if content.count < 0x80 {
            len = [UInt8(content.count)]
        } else {
            var n = content.count
            var b: [UInt8] = []
            while n > 0 { b.insert(UInt8(n & 0xFF), at: 0); n >>= 8 }
            len = [0x80 | UInt8(b.count)] + b
        }
        return [tag] + len + content
    }
    static func seq(_ items: [UInt8]...) -> [UInt8] { tlv(0x30, items.flatMap { $0 }) }
    static func seq(_ items: [[UInt8]]) -> [UInt8] { tlv(0x30, items.flatMap { $0 }) }
    static func set(_ items: [UInt8]...) -> [UInt8] { tlv(0x31, items.flatMap { $0 }) }
    static func octets(_ b: [UInt8]) -> [UInt8] { tlv(0x04, b) }
    static func int(_ v: Int) -> [UInt8] {
        var s = DER.Serializer()
        try! s.serialize(v)
        return s.serializedBytes
    }
    static func oid(_ o: ASN1ObjectIdentifier) -> [UInt8] {
        var s = DER.Serializer()
        try! s.serialize(o)
        return s.serializedBytes
    }
    static func explicit0(_ c: [UInt8]) -> [UInt8] { tlv(0xA0, c) }
    static let null: [UInt8] = [0x05, 0x00]

    static func data(_ content: [UInt8]) -> [UInt8] { seq(oid(PKCS12File.oidData), explicit0(octets(content))) }
    /// A PFX around `authSafe` (the DER of an AuthenticatedSafe), with `mac` appended as is.
    static func pfx(_ authSafe: [UInt8], mac: [UInt8] = [], version: Int = 3) -> [UInt8] {
        seq(int(version), data(authSafe), mac)
    }
    static func macData(hash: ASN1ObjectIdentifier, digest: [UInt8], salt: [UInt8], iterations: Int) -> [UInt8] {
        seq(seq(seq(oid(hash), null), octets(digest)), octets(salt), int(iterations))
    }
    static func secretBag() -> [UInt8] {
        seq(oid([1, 2, 840, 113_549, 1, 12, 10, 1, 5]), explicit0(seq(oid([1, 2, 3]), explicit0(octets([1])))))
    }
    static func encryptedData(algorithm: [UInt8], ciphertext: [UInt8]) -> [UInt8] {
        seq(
            oid(PKCS12File.oidEncryptedData),
            explicit0(seq(int(0), seq(oid(PKCS12File.oidData), algorithm, tlv(0x80, ciphertext)))))
    }
}

@Suite("PKCS#12")
struct PKCS12Tests {
    // MARK: - RC2

    @Test("RC2 matches the eight test vectors of RFC 2268 §5, both ways")
    func rc2Vectors() throws {
        let vectors: [(key: String, bits: Int, plain: String, cipher: String)] = [
            ("0000000000000000", 63, "0000000000000000", "ebb773f993278eff"),
            ("ffffffffffffffff", 64, "ffffffffffffffff", "278b27e42e2f0d49"),
            ("3000000000000000", 64, "1000000000000001", "30649edf9be7d2c2"),
            ("88", 64, "0000000000000000", "61a8a244adacccf0"),
            ("88bca90e90875a", 64, "0000000000000000", "6ccf4308974c267f"),
            ("88bca90e90875a7f0f79c384627bafb2", 64, "0000000000000000", "1a807d272bbe5db1"),
            ("88bca90e90875a7f0f79c384627bafb2", 128, "0000000000000000", "2269552ab0f85ca6"),
            (
                "88bca90e90875a7f0f79c384627bafb216f80a6f85920584c42fceb0be255daf1e", 129, "0000000000000000",
                "5b78d3a43dfff1f1"
            ),
        ]
        for v in vectors {
            let rc2 = try RC2(key: hex(v.key), effectiveKeyBits: v.bits)
            var block = hex(v.plain)
            rc2.encryptBlock(&block, at: 0)
            #expect(block == hex(v.cipher), "encrypt \(v.key)/\(v.bits)")
            rc2.decryptBlock(&block, at: 0)
            #expect(block == hex(v.plain), "decrypt \(v.key)/\(v.bits)")
        }
        #expect(Set(RC2.piTable).count == 256)
    }

    @Test("RC2-CBC round trips at every length 0…40; bad padding, lengths and keys are errors")
    func rc2CBC() throws {
        let rc2 = try RC2(key: Array(0..<5), effectiveKeyBits: 40)
        let iv: [UInt8] = [9, 8, 7, 6, 5, 4, 3, 2]
        for n in 0...40 {
            let plain = (0..<n).map { UInt8(truncatingIfNeeded: $0 * 31) }
            let ct = rc2.cbcEncrypt(plain, iv: iv)
            #expect(ct.count == (n / 8 + 1) * 8)
            #expect(try rc2.cbcDecrypt(ct, iv: iv) == plain)
        }
        var ct = rc2.cbcEncrypt([1, 2, 3], iv: iv)
        ct[7] ^= 0x55
        #expect(throws: FormatError.authenticationFailed) { try rc2.cbcDecrypt(ct, iv: iv) }
        #expect(throws: FormatError.authenticationFailed) { try rc2.cbcDecrypt([1, 2, 3], iv: iv) }
        #expect(throws: FormatError.authenticationFailed) { try rc2.cbcDecrypt([], iv: iv) }
        #expect(throws: FormatError(.malformed, "")) { try rc2.cbcDecrypt(ct, iv: [1]) }
        #expect(throws: FormatError(.malformed, "")) { try RC2(key: [], effectiveKeyBits: 40) }
        #expect(throws: FormatError(.malformed, "")) { try RC2(key: [1], effectiveKeyBits: 0) }
        #expect(throws: FormatError(.malformed, "")) { try RC2(key: [UInt8](repeating: 1, count: 129), effectiveKeyBits: 64) }
    }

    // MARK: - KDF

    @Test("PKCS#12 KDF (RFC 7292 B.2) matches openssl kdf PKCS12KDF")
    func kdfVectors() throws {
        let doc = try Fixtures.json("kdf-vectors.json")
        let vectors = try #require(doc["vectors"] as? [[String: Any]])
        #expect(vectors.count >= 10)
        for v in vectors {
            let password = hex(v["passwordBMP"] as! String), salt = hex(v["salt"] as! String)
            let iterations = v["iterations"] as! Int, n = v["length"] as! Int
            let id = try #require(PKCS12KDF.Purpose(rawValue: UInt8(v["id"] as! Int)))
            let expected = hex(v["output"] as! String)
            let out: [UInt8]
            switch v["hash"] as! String {
            case "SHA1": out = PKCS12KDF.derive(Insecure.SHA1.self, id: id, password: password, salt: salt, iterations: iterations, count: n)
            case "SHA256": out = PKCS12KDF.derive(SHA256.self, id: id, password: password, salt: salt, iterations: iterations, count: n)
            case "SHA512": out = PKCS12KDF.derive(SHA512.self, id: id, password: password, salt: salt, iterations: iterations, count: n)
            default: Issue.record("unknown hash"); continue
            }
            #expect(out == expected, "\(v["hash"]!) id \(id) \(v["password"] ?? "null")")
            if let text = v["password"] as? String {
                #expect(PKCS12KDF.bmpPassword(Array(text.utf8)) == password, "BMPString of \(text)")
            }
        }
    }

    @Test("passwords become NUL-terminated BMPStrings; non-BMP characters become surrogate pairs")
    func bmpPasswords() {
        #expect(PKCS12KDF.bmpPassword([]) == [0, 0])
        #expect(PKCS12KDF.bmpPassword(Array("ab".utf8)) == [0, 0x61, 0, 0x62, 0, 0])
        #expect(PKCS12KDF.bmpPassword(Array("é☃".utf8)) == [0, 0xE9, 0x26, 0x03, 0, 0])
        #expect(PKCS12KDF.bmpPassword(Array("😀".utf8)) == [0xD8, 0x3D, 0xDE, 0x00, 0, 0])
        // Not UTF-8: one code unit per byte.
        #expect(PKCS12KDF.bmpPassword([0xFF, 0x41]) == [0, 0xFF, 0, 0x41, 0, 0])
    }

    // MARK: - Fixtures

    @Test("every fixture opens with its password and gives the keys and certificates openssl reports")
    func fixtures() throws {
        let all = try Fixtures.expected()
        #expect(all.count >= 13)
        for e in all {
            let pfx = try PKCS12File(bytes: try Fixtures.data(e.file), passphrase: pw(e.password))
            #expect(pfx.keys.count == e.keys.count, "\(e.file)")
            #expect(pfx.certificates.map { Hex.encode($0.thumbprint.bytes, uppercase: true) } == e.certificates, "\(e.file)")
            #expect(pfx.usesLegacyEncryption == e.legacy, "\(e.file)")
            #expect(pfx.integrity.description.hasPrefix(e.integrity == "none" ? "no MAC" : e.integrity), "\(e.file): \(pfx.integrity)")
            if let schemes = e.schemes { #expect(pfx.encryptionSchemes.sorted() == schemes.sorted(), "\(e.file)") }
            for (bag, want) in zip(pfx.keys, e.keys) {
                let key = try bag.privateKey()
                var spki = DER.Serializer()
                try spki.serialize(key.certificateSigningKey().publicKey)
                #expect(Hex.encode(SHA256.hash(data: spki.serializedBytes)) == want.spkiSHA256, "\(e.file)")
                let cert = try #require(bag.certificate, "\(e.file): key has no certificate")
                #expect(Hex.encode(cert.thumbprint.bytes, uppercase: true) == want.certificate, "\(e.file)")
                #expect(key.matches(try cert.efsCertificate()), "\(e.file)")
                #expect(bag.friendlyName == want.friendlyName, "\(e.file)")
                if let id = want.localKeyID { #expect(bag.localKeyID == hex(id), "\(e.file)") }
            }
            #expect(PKCS12File.isPKCS12(try Fixtures.data(e.file)))
        }
    }

    @Test("an RSA-1024 CA certificate is listed but is not an EFS certificate")
    func unusableCertificate() throws {
        let pfx = try PKCS12File(bytes: try Fixtures.data("openssl-legacy.pfx"), passphrase: pw("correct horse"))
        #expect(pfx.certificates.count == 2)
        #expect(pfx.efsCertificates.count == 1)
        let ca = try #require(pfx.certificates.first { $0.friendlyName == nil && pfx.keys[0].certificate != $0 })
        // swift-certificates itself refuses RSA keys below 2048 bits.
        #expect(throws: FormatError.self) { try ca.efsCertificate() }
        #expect(pfx.keys[0].encryption == "pbeWithSHAAnd3-KeyTripleDES-CBC")
    }

    @Test("the two-key BER file: pairs by localKeyId and by public key, skips the secretBag")
    func twoKeys() throws {
        let pfx = try PKCS12File(bytes: try Fixtures.data("custom-two-keys-ber.pfx"), passphrase: pw("correct horse"))
        #expect(pfx.skippedBagCount == 1)
        #expect(pfx.keys[0].encryption == nil)
        #expect(pfx.keys[1].encryption == "pbeWithSHAAnd128BitRC2-CBC")
        #expect(pfx.keys[1].localKeyID == nil)
        #expect(pfx.keys[1].certificate?.thumbprint == pfx.certificates[0].thumbprint)
        #expect(pfx.keys[0].certificate?.thumbprint == pfx.certificates[2].thumbprint)
    }

    @Test("RFC 9579 A.1 (PBMAC1 with HMAC-SHA256) opens with 1234; a changed PBKDF2 iteration count does not")
    func rfc9579() throws {
        let a1 = try Fixtures.data("rfc9579-a1.pfx")
        let pfx = try PKCS12File(bytes: a1, passphrase: pw("1234"))
        #expect(pfx.integrity == .pbmac1(mac: "HMAC-SHA256", iterations: 2048))
        #expect(pfx.keys.count == 1)
        #expect(pfx.keys[0].certificate != nil)
        _ = try pfx.keys[0].privateKey()
        #expect(throws: FormatError.authenticationFailed) { try PKCS12File(bytes: a1, passphrase: pw("12345")) }
        // RFC 9579 A.4: the same file with the PBKDF2 iteration count 2049 instead of 2048.
        let pbkdf2Params = hex("04086f473c38b02e3173020208000201")
        var a4 = a1
        let at = try #require(Self.find(pbkdf2Params, in: a4))
        a4[at + pbkdf2Params.count - 3] = 0x01
        #expect(throws: FormatError.authenticationFailed) { try PKCS12File(bytes: a4, passphrase: pw("1234")) }
    }

    @Test("PBMAC1 without a PBKDF2 key length is malformed (RFC 9579 §5, A.6)")
    func pbmac1NoKeyLength() throws {
        let authSafe = D.seq(D.data(D.seq(D.secretBag())))
        let kdf = D.seq(D.oid(PBES2.oidPBKDF2), D.seq(D.octets(Array(repeating: 1, count: 8)), D.int(2048), D.seq(D.oid(PBES2.oidHMACSHA256), D.null)))
        let alg = D.seq(D.oid(PKCS12File.oidPBMAC1), D.seq(kdf, D.seq(D.oid(PBES2.oidHMACSHA256), D.null)))
        let mac = D.seq(D.seq(alg, D.octets(Array(repeating: 0, count: 32))), D.octets(Array("NOT USED".utf8)), D.int(1))
        #expect(throws: FormatError(.malformed, "")) { try PKCS12File(bytes: D.pfx(authSafe, mac: mac), passphrase: pw("x")) }
    }

    // MARK: - Passwords

    @Test("a wrong password is an authentication failure that says so, with or without a MAC")
    func wrongPassword() throws {
        for e in try Fixtures.expected() where e.file != "openssl-nomac-plain.pfx" {
            let bytes = try Fixtures.data(e.file)
            do {
                _ = try PKCS12File(bytes: bytes, passphrase: pw(e.password + "x"))
                Issue.record("\(e.file) opened with a wrong password")
            } catch {
                #expect(error.code == .authenticationFailed, "\(e.file)")
                #expect(error.message.contains("wrong password"), "\(e.file): \(error.message)")
            }
        }
        // No MAC and no encryption: nothing to check a password against.
        _ = try PKCS12File(bytes: try Fixtures.data("openssl-nomac-plain.pfx"), passphrase: pw("anything"))
    }

    @Test("an empty passphrase is tried as the empty BMPString and as the null password")
    func emptyAndNullPasswords() throws {
        let empty = try PKCS12File(bytes: try Fixtures.data("openssl-empty-password.pfx"), passphrase: Passphrase([]))
        #expect(empty.keys.count == 1)
        let null = try PKCS12File(bytes: try Fixtures.data("windows-style-null-password.pfx"), passphrase: Passphrase([]))
        #expect(null.keys.count == 1)
        #expect(null.keys[0].localKeyID == [1, 0, 0, 0])
        #expect(throws: FormatError.authenticationFailed) {
            try PKCS12File(bytes: try Fixtures.data("windows-style-null-password.pfx"), passphrase: pw(" "))
        }
    }

    // MARK: - Encodings

    @Test("PEM-wrapped PFX files open; isPKCS12 tells PFX from keys and certificates")
    func pem() throws {
        let der = try Fixtures.data("openssl-default.pfx")
        for label in ["PKCS12", "CERTIFICATE"] {
            let text = PEMDocument(type: label, derBytes: der).pemString + "\n"
            #expect(PKCS12File.isPKCS12(Array(text.utf8)))
            _ = try PKCS12File(bytes: Array(text.utf8), passphrase: pw("correct horse"))
        }
        #expect(!PKCS12File.isPKCS12(try Fixtures.data("alice-rsa2048.cert.pem")))
        #expect(!PKCS12File.isPKCS12(try Fixtures.data("alice-rsa2048.key.pem")))
        #expect(!PKCS12File.isPKCS12([]))
        #expect(throws: FormatError(.malformed, "")) {
            try PKCS12File(bytes: try Fixtures.data("alice-rsa2048.cert.pem"), passphrase: pw("x"))
        }
    }

    // MARK: - Bad input

    @Test("every truncation of a PFX is an error, never a crash")
    func truncated() throws {
        let bytes = try Fixtures.data("openssl-2des-rc2-128.pfx")
        for n in stride(from: 0, to: bytes.count, by: 5) {
            #expect(throws: FormatError.self, "prefix \(n)") { try PKCS12File(bytes: Array(bytes.prefix(n)), passphrase: pw("correct horse")) }
        }
        #expect(throws: FormatError.self) { try PKCS12File(bytes: bytes + [0], passphrase: pw("correct horse")) }
    }

    @Test("bit flips give errors, never a crash or a different key")
    func bitFlips() throws {
        let bytes = try Fixtures.data("custom-two-keys-ber.pfx")
        let good = try PKCS12File(bytes: bytes, passphrase: pw("correct horse"))
        let goodKeys = try good.keys.map { try $0.privateKey().pkcs8DER() }
        var opened = 0
        for i in stride(from: 0, to: bytes.count, by: 3) {
            var b = bytes
            b[i] ^= UInt8(1 << (i % 8))
            do {
                let pfx = try PKCS12File(bytes: b, passphrase: pw("correct horse"))
                // A flip the MAC does not cover (MacData's own encoding) may leave a valid file: same keys.
                #expect(try pfx.keys.map { try $0.privateKey().pkcs8DER() } == goodKeys, "flip at \(i)")
                opened += 1
            } catch is FormatError {
                continue
            } catch {
                Issue.record("flip at \(i): \(error)")
            }
        }
        #expect(opened < 10)
    }

    @Test("a MAC that does not verify with any password is an authentication failure before decryption")
    func badMAC() throws {
        let authSafe = D.seq(D.data(D.seq(D.secretBag())))
        let mac = D.macData(hash: [1, 3, 14, 3, 2, 26], digest: Array(repeating: 0, count: 20), salt: [1, 2, 3, 4], iterations: 1)
        #expect(throws: FormatError.authenticationFailed) { try PKCS12File(bytes: D.pfx(authSafe, mac: mac), passphrase: pw("x")) }
        // The same structure with no MAC opens, with nothing in it.
        let empty = try PKCS12File(bytes: D.pfx(authSafe), passphrase: pw("x"))
        #expect(empty.keys.isEmpty && empty.certificates.isEmpty && empty.skippedBagCount == 1)
    }

    @Test("hostile iteration counts, bag counts and nesting hit named limits quickly")
    func limits() throws {
        let authSafe = D.seq(D.data(D.seq(D.secretBag())))
        let clock = ContinuousClock()
        let t = try clock.measure {
            let mac = D.macData(
                hash: [1, 3, 14, 3, 2, 26], digest: Array(repeating: 0, count: 20), salt: [1],
                iterations: PKCS12File.maximumIterations + 1)
            #expect(throws: FormatError(.limitExceeded, "")) { try PKCS12File(bytes: D.pfx(authSafe, mac: mac), passphrase: pw("x")) }
            // A legacy PBE asking for too many iterations, without a MAC.
            let alg = D.seq(D.oid([1, 2, 840, 113_549, 1, 12, 1, 3]), D.seq(D.octets([1, 2]), D.int(PKCS12File.maximumIterations + 1)))
            let enc = D.seq(D.encryptedData(algorithm: alg, ciphertext: Array(repeating: 0, count: 16)))
            #expect(throws: FormatError(.limitExceeded, "")) { try PKCS12File(bytes: D.pfx(enc), passphrase: pw("x")) }
            // PBES2 asking for too many.
            let pbes2 = D.seq(
                D.oid(PBES2.oid),
                D.seq(
                    D.seq(D.oid(PBES2.oidPBKDF2), D.seq(D.octets([1, 2, 3, 4, 5, 6, 7, 8]), D.int(PKCS12File.maximumIterations + 1))),
                    D.seq(D.oid(PBES2.oidAES256CBC), D.octets(Array(repeating: 0, count: 16)))))
            let enc2 = D.seq(D.encryptedData(algorithm: pbes2, ciphertext: Array(repeating: 0, count: 16)))
            #expect(throws: FormatError(.limitExceeded, "")) { try PKCS12File(bytes: D.pfx(enc2), passphrase: pw("x")) }
            // Too many total iterations: items each within the per-item limit.
            let budget = PKCS12File.Parsed()
            for _ in 0..<(PKCS12File.maximumTotalIterations / PKCS12File.maximumIterations) {
                try budget.spend(PKCS12File.maximumIterations)
            }
            #expect(throws: FormatError(.limitExceeded, "")) { try budget.spend(1) }
            #expect(throws: FormatError(.limitExceeded, "")) { try PKCS12File.Parsed().spend(0) }
        }
        #expect(t < .seconds(2))
        // Bags.
        let bags = D.seq(D.data(D.seq((0...PKCS12File.maximumBags).map { _ in D.secretBag() })))
        #expect(throws: FormatError(.limitExceeded, "")) { try PKCS12File(bytes: D.pfx(bags), passphrase: pw("x")) }
        // Nesting.
        var inner = D.seq(D.secretBag())
        for _ in 0...PKCS12File.maximumBagNesting {
            inner = D.seq(D.seq(D.oid(PKCS12File.oidSafeContentsBag), D.explicit0(inner)))
        }
        #expect(throws: FormatError(.limitExceeded, "")) { try PKCS12File(bytes: D.pfx(D.seq(D.data(inner))), passphrase: pw("x")) }
        // Size.
        #expect(throws: FormatError(.limitExceeded, "")) {
            try PKCS12File(bytes: Array(repeating: 0x30, count: PKCS12File.maximumFileSize + 1), passphrase: pw("x"))
        }
    }

    @Test("unsupported modes and algorithms are named in the error")
    func unsupported() throws {
        // Public-key integrity mode.
        let signed = D.seq(D.int(3), D.seq(D.oid(PKCS12File.oidSignedData), D.explicit0(D.seq(D.int(1)))))
        #expect(throws: FormatError(.unsupportedAlgorithm, "")) { try PKCS12File(bytes: signed, passphrase: pw("x")) }
        // RC4.
        let rc4 = D.seq(D.oid([1, 2, 840, 113_549, 1, 12, 1, 1]), D.seq(D.octets([1, 2]), D.int(1)))
        let enc = D.pfx(D.seq(D.encryptedData(algorithm: rc4, ciphertext: Array(repeating: 0, count: 16))))
        do {
            _ = try PKCS12File(bytes: enc, passphrase: pw("x"))
            Issue.record("RC4 accepted")
        } catch {
            #expect(error.code == .unsupportedAlgorithm)
            #expect(error.message.contains("1.2.840.113549.1.12.1.1"))
        }
        // An MD5 MAC.
        let mac = D.macData(hash: [1, 2, 840, 113_549, 2, 5], digest: Array(repeating: 0, count: 16), salt: [1], iterations: 1)
        #expect(throws: FormatError(.unsupportedAlgorithm, "")) {
            try PKCS12File(bytes: D.pfx(D.seq(D.data(D.seq(D.secretBag()))), mac: mac), passphrase: pw("x"))
        }
        // Enveloped data.
        let env = D.pfx(D.seq(D.seq(D.oid(PKCS12File.oidEnvelopedData), D.explicit0(D.seq(D.int(0))))))
        #expect(throws: FormatError(.unsupportedAlgorithm, "")) { try PKCS12File(bytes: env, passphrase: pw("x")) }
        // Version 2.
        #expect(throws: FormatError(.unsupportedVersion, "")) {
            try PKCS12File(bytes: D.pfx(D.seq(D.data(D.seq(D.secretBag()))), version: 2), passphrase: pw("x"))
        }
        // A keyBag that is not PKCS#8.
        let badKey = D.seq(D.oid(PKCS12File.oidKeyBag), D.explicit0(D.seq(D.int(1))))
        #expect(throws: FormatError(.malformed, "")) { try PKCS12File(bytes: D.pfx(D.seq(D.data(D.seq(badKey)))), passphrase: pw("x")) }
    }

    @Test("PrivateKeyFile still reads PBES2 keys through the shared PBES2 code, DES-EDE3-CBC ones too")
    func privateKeyFilePBES2() throws {
        let key = try UserPrivateKey.generate(.p256)
        let pem = PrivateKeyFile.encode(key, passphrase: pw("pw"), iterations: 1000)
        #expect(try PrivateKeyFile.decode(Array(pem.utf8)) { pw("pw") }.pkcs8DER() == key.pkcs8DER())
        #expect(throws: FormatError.authenticationFailed) { _ = try PrivateKeyFile.decode(Array(pem.utf8)) { pw("no") } }
        // openssl pkcs8 -topk8 -v2 des3 (made by make-pkcs12-fixtures.py).
        let des3 = try Fixtures.data("alice-rsa2048.pbes2-des3.key.pem")
        let alice = try PrivateKeyFile.decode(des3) { pw("correct horse") }
        let plain = try PrivateKeyFile.decode(try Fixtures.data("alice-rsa2048.key.pem")) { pw("") }
        #expect(alice.pkcs8DER() == plain.pkcs8DER())
        #expect(throws: FormatError.authenticationFailed) { _ = try PrivateKeyFile.decode(des3) { pw("correct horsE") } }
    }

    static func find(_ needle: [UInt8], in hay: [UInt8]) -> Int? {
        guard needle.count <= hay.count else { return nil }
        for i in 0...(hay.count - needle.count) where Array(hay[i..<i + needle.count]) == needle { return i }
        return nil
    }
}
