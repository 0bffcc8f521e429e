// SPDX-License-Identifier: Apache-2.0
// This file is part of swift-efs. See LICENSE for details.

import EFSCore
import Testing

@testable import EFSWindows

@Suite("FEK structure, wrapping and unwrapping")
struct WindowsFEKTests {
    @Test("the FEK structure of the Windows 10 sample shape parses (Entropy 0x20 is accepted)")
    func parseSample() throws {
        let key = pattern(32)
        let bytes = hex("20000000" + "20000000" + "10660000" + "00000000") + key
        let fek = try WindowsFEK.parse(bytes)
        #expect(fek.algorithm == .aes256 && fek.entropy == 0x20 && fek.key == key && !fek.isWeak)
        #expect(fek.encode() == bytes)
        // Entropy is not validated: the spec table's 256 works as well.
        var other = bytes
        put32(&other, 4, 256)
        #expect(try WindowsFEK.parse(other).entropy == 256)
    }

    @Test("3DES and DESX FEKs are weak")
    func weak() throws {
        #expect(try WindowsFEK(algorithm: .tripleDES, key: pattern(24)).isWeak)
        #expect(try WindowsFEK(algorithm: .desx, key: pattern(16)).isWeak)
    }

    @Test("unknown ALG_IDs are named; wrong key lengths, truncation and trailing bytes are refused")
    func rejections() throws {
        var b = WindowsFEK.parseFixture(alg: 0x6601, keyLength: 8)
        var error = #expect(throws: FormatError.self) { try WindowsFEK.parse(b) }
        #expect(error?.code == .unsupportedAlgorithm && error?.message.contains("0x6601") == true)
        b = WindowsFEK.parseFixture(alg: 0x6602, keyLength: 16)
        error = #expect(throws: FormatError.self) { try WindowsFEK.parse(b) }
        #expect(error?.code == .unsupportedAlgorithm && error?.message.contains("0x6602") == true)
        b = WindowsFEK.parseFixture(alg: 0x6610, keyLength: 16)
        #expect(throws: FormatError(.malformed, "")) { try WindowsFEK.parse(b) }
        b = WindowsFEK.parseFixture(alg: 0x6610, keyLength: 32)
        #expect(throws: FormatError(.truncated, "")) { try WindowsFEK.parse(Array(b.prefix(16 + 8))) }
        #expect(throws: FormatError(.trailingData, "")) { try WindowsFEK.parse(b + [0]) }
        #expect(throws: FormatError(.truncated, "")) { try WindowsFEK.parse([1, 2]) }
        #expect(throws: FormatError.self) { try WindowsFEK.parse(WindowsFEK.parseFixture(alg: 0x6610, keyLength: 0)) }
    }

    @Test("wrap → unwrap; the stored ciphertext is byte-reversed PKCS#1 v1.5")
    func wrapUnwrap() throws {
        for alg in WindowsAlgorithm.supported {
            let fek = try WindowsFEK.generate(alg)
            let e = try entry(.alice, fek)
            #expect(e.encryptedFEK.count == 256)
            let unwrapped = try e.unwrapFEK(using: TestIdentity.alice.key.key)
            #expect(unwrapped.key == fek.key && unwrapped.algorithm == alg)
            // Reversed back, the bytes are a plain PKCS#1 v1.5 ciphertext of the FEK structure.
            #expect(try TestIdentity.alice.key.key.decryptPKCS1v15(e.encryptedFEK.reversed()) == fek.encode())
            // Not reversed, they are not.
            #expect(throws: FormatError.authenticationFailed) {
                try TestIdentity.alice.key.key.decryptPKCS1v15(e.encryptedFEK)
            }
        }
    }

    @Test("a 1024-bit key: wrapped for a bare public key, unwrapped with the legacy key parser")
    func legacy1024() throws {
        let key = try UserPrivateKey.parseLegacyRSA(der: UserPrivateKey.generateLegacyRSA(bits: 1024).pkcs8DER())
        let fek = try WindowsFEK.generate(.tripleDES)
        let thumb = LegacyCrypto.sha1(Array("a certificate".utf8))
        let e = try WindowsKeyEntry.wrapping(
            fek, publicKey: key.legacyRSAPublicKey(), thumbprint: thumb, displayName: "old")
        #expect(e.encryptedFEK.count == 128 && e.publicKeyInfo.thumbprint == thumb)
        let m = WindowsEFSMetadata(efsVersion: 1, efsID: pattern(16), ddf: [e], drf: nil)
        let (out, match) = try WindowsEFSMetadata.parse(m.encode()).unwrapFEK(using: key, thumbprint: thumb)
        #expect(out.key == fek.key && match.index == 0 && out.isWeak)
    }

    @Test("the wrong key, an AES-wrapped entry and unknown flags give clear errors")
    func unwrapErrors() throws {
        let fek = try WindowsFEK.generate()
        var e = try entry(.alice, fek)
        #expect(throws: FormatError.authenticationFailed) { try e.unwrapFEK(using: TestIdentity.bob.key.key) }
        e.flags = WindowsKeyEntry.flagAESWrapped
        let error = #expect(throws: FormatError.self) { try e.unwrapFEK(using: TestIdentity.alice.key.key) }
        #expect(error?.code == .unsupportedAlgorithm && error?.message.contains("AES-wrapped") == true)
        e.flags = 7
        #expect(throws: FormatError(.unsupportedAlgorithm, "")) { try e.unwrapFEK(using: TestIdentity.alice.key.key) }
        let ec = try UserPrivateKey.generate(.p256)
        #expect(throws: FormatError(.unsupportedAlgorithm, "")) { try entry(.alice, fek).unwrapFEK(using: ec) }
    }

    @Test("matching by thumbprint, trial unwrapping, and no match")
    func matching() throws {
        let fek = try WindowsFEK.generate()
        let m = try sampleMetadata(fek)
        let (a, matchA) = try m.unwrapFEK(
            using: TestIdentity.alice.key.key, thumbprint: TestIdentity.alice.certificate.thumbprint.bytes)
        #expect(a.key == fek.key && !matchA.isRecovery && matchA.index == 0)
        let (r, matchR) = try m.unwrapFEK(
            using: TestIdentity.agent.key.key, thumbprint: TestIdentity.agent.certificate.thumbprint.bytes)
        #expect(r.key == fek.key && matchR.isRecovery && matchR.index == 0)
        let (b, matchB) = try m.unwrapFEK(using: TestIdentity.bob.key.key, thumbprint: nil)
        #expect(b.key == fek.key && matchB.index == 1)
        // A key on no entry.
        let stranger = try UserPrivateKey.generate(.rsa(bits: 2048))
        let error = #expect(throws: FormatError.self) { try m.unwrapFEK(using: stranger, thumbprint: nil) }
        #expect(error?.code == .authenticationFailed && error?.message.contains("no DDF or DRF entry") == true)
        #expect(throws: FormatError(.authenticationFailed, "")) {
            try m.unwrapFEK(using: stranger, thumbprint: pattern(20))
        }
        // The right thumbprint with the wrong key: the unwrap failure itself.
        #expect(throws: FormatError.authenticationFailed) {
            try m.unwrapFEK(using: stranger, thumbprint: TestIdentity.alice.certificate.thumbprint.bytes)
        }
    }
}

extension WindowsFEK {
    static func parseFixture(alg: UInt32, keyLength: Int) -> [UInt8] {
        var b = [UInt8](repeating: 0, count: 16)
        put32(&b, 0, UInt32(keyLength))
        put32(&b, 4, UInt32(keyLength * 8))
        put32(&b, 8, alg)
        return b + pattern(keyLength)
    }
}
