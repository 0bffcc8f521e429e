// SPDX-License-Identifier: Apache-2.0
// This file is part of swift-efs. See LICENSE for details.

import Testing

@testable import EFSCore

private func hex(_ s: String) -> [UInt8] { Hex.decode(s)! }

@Suite("HPKESeal")
struct HPKESealTests {
    /// The CFRG test vector for DHKEM(P-256, HKDF-SHA256), HKDF-SHA256, AES-256-GCM, mode_base (kem_id 16,
    /// kdf_id 1, aead_id 2: the suite of file-format.md §4.3), from the RFC 9180 `test-vectors.json`
    /// (github.com/cfrg/draft-irtf-cfrg-hpke), first encryption (sequence number 0).
    @Test("matches the RFC 9180 test vector for P-256, HKDF-SHA256, AES-256-GCM")
    func knownAnswer() throws {
        let out = try _hpkeSealP256(
            recipientX963: hex("04abc7e49a4c6b3566d77d0304addc6ed0e98512ffccf505e6a8e3eb25c685136f853148544876de76c0f2ef99cdc3a05ccf5ded7860c7c021238f9e2073d2356c"),
            ephemeralScalar: hex("90345e3a1d116c1dd39ae76d95ab858c142223a63e44f8f85318cfa91a84858e"),
            info: hex("4f6465206f6e2061204772656369616e2055726e"),
            aad: hex("436f756e742d30"),
            plaintext: hex("4265617574792069732074727574682c20747275746820626561757479"))
        let enc = hex("04c06b4f6bebc7bb495cb797ab753f911aff80aefb86fd8b6fcc35525f3ab5f03e0b21bd31a86c6048af3cb2d98e0d3bf01da5cc4c39ff5370d331a4f1f7d5a4e0")
        let ct = hex("58c61a45059d0c5704560e9d88b564a8b63f1364b8d1fcb3c4c6ddc1d291742465e902cd216f8908da49f8f96f")
        #expect(out == enc + ct)
    }

    /// Every wrap opens with swift-crypto's own `HPKE.Recipient` (in ``UserPrivateKey/unwrap(_:fileID:)``), for
    /// both curves, and no two wraps of one FEK share an ephemeral key.
    @Test("wraps open with swift-crypto's HPKE recipient", arguments: [UserPrivateKey.Kind.p256, .p384])
    func opensWithSwiftCrypto(_ kind: UserPrivateKey.Kind) throws {
        let key = try UserPrivateKey.generate(kind)
        let cert = try key.makeSelfSignedCertificate(name: "hpke", recoveryAgent: false)
        var encs = Set<[UInt8]>()
        for _ in 0..<100 {
            let fek = FileEncryptionKey.generate(fileID: .random())
            let entry = try cert.wrap(fek)
            #expect(entry.wrappedKey.count == (kind == .p256 ? 113 : 145))
            #expect(try key.unwrap(entry, fileID: fek.fileID).hasSameKey(as: fek))
            encs.insert(Array(entry.wrappedKey[0..<(kind == .p256 ? 65 : 97)]))
            // Bound to the file id (the AEAD's associated data).
            #expect(throws: FormatError.authenticationFailed) { try key.unwrap(entry, fileID: .random()) }
        }
        #expect(encs.count == 100)
    }

    /// Wrap algorithms 4 and 5 against known answers made by pyhpke and pyca/cryptography
    /// (`Vectors/make-shared-wrap-vectors.py`): FEK 00…1f, file id 10…1f, wrap id a0…af.
    @Test("a shared encapsulation matches an independent implementation", arguments: [
        ("317f915db7bc629c48fe765587897e01e282d3e8445f79f27f65d031a88082b2",
         "90345e3a1d116c1dd39ae76d95ab858c142223a63e44f8f85318cfa91a84858e",
         "04c06b4f6bebc7bb495cb797ab753f911aff80aefb86fd8b6fcc35525f3ab5f03e0b21bd31a86c6048af3cb2d98e0d3bf01da5cc4c39ff5370d331a4f1f7d5a4e0a0a1a2a3a4a5a6a7a8a9aaabacadaeaf8558e5a3d29844db3be310ce03a03829e65ebeb5638aac95d8bd9823b2aa2d0e94bcd833f01e0881703c6c9659b76796"),
        (Hex.encode(Array(UInt8(1)...48)), Hex.encode(Array(UInt8(2)...49)),
         "043ec2ade52324caf4a190c01bacc8280249844ab215eb937ed4645370562a38203a690369ac6fcf58c779e8949a85763b2c3deee99ae660555a538c4f3dae4fb6c80c25a36ad884409317fcb9124b4bab57eadc0a78c45b40062277e8eea7471ea0a1a2a3a4a5a6a7a8a9aaabacadaeaf8f4afe8b298464dad3dea97c6243239944e17c4b290933904af2b4a53711343f434284c674afdf3861a02323a94474fe"),
    ])
    func sharedKnownAnswer(recipient: String, ephemeral: String, wrapped: String) throws {
        let key = try _ecUserKey(rawScalar: hex(recipient))
        let cert = try key.makeSelfSignedCertificate(name: "kat", recoveryAgent: false)
        let shared = try #require(try cert.sharedEncapsulation(ephemeralScalar: hex(ephemeral)))
        let fileID = try FileID(bytes: Array(0x10...0x1f))
        let fek = try FileEncryptionKey(unwrapped: Array(0x00...0x1f), fileID: fileID)
        let entry = try shared.wrap(fek, wrapID: Array(0xa0...0xaf))
        #expect(entry.algorithm == (recipient.count == 64 ? .hpkeP256Shared : .hpkeP384Shared))
        #expect(Hex.encode(entry.wrappedKey) == wrapped)
        // swift-crypto's recipient opens it.
        #expect(try key.unwrap(entry, fileID: fileID).hasSameKey(as: fek))
    }

    /// Many FEKs from one encapsulation: one `enc`, a fresh wrap id each, every one opens with swift-crypto's
    /// `HPKE.Recipient`, bound to its file id; any changed byte, a wrong length or another curve's key is refused.
    @Test("wraps from a shared encapsulation open, each bound to its file", arguments: [UserPrivateKey.Kind.p256, .p384])
    func sharedWrapsOpen(_ kind: UserPrivateKey.Kind) throws {
        let key = try UserPrivateKey.generate(kind)
        let other = try UserPrivateKey.generate(kind == .p256 ? .p384 : .p256)
        let cert = try key.makeSelfSignedCertificate(name: "shared", recoveryAgent: false)
        let shared = try #require(try cert.sharedEncapsulation())
        let encSize = kind == .p256 ? 65 : 97
        var encs = Set<[UInt8]>(), wrapIDs = Set<[UInt8]>()
        for i in 0..<50 {
            let fek = FileEncryptionKey.generate(fileID: .random())
            let entry = try shared.wrap(fek)
            #expect(entry.algorithm == (kind == .p256 ? .hpkeP256Shared : .hpkeP384Shared))
            #expect(entry.wrappedKey.count == encSize + 16 + 32 + 16)
            encs.insert(Array(entry.wrappedKey[0..<encSize]))
            wrapIDs.insert(Array(entry.wrappedKey[encSize..<(encSize + 16)]))
            #expect(try key.unwrap(entry, fileID: fek.fileID).hasSameKey(as: fek))
            #expect(throws: FormatError.authenticationFailed) { try key.unwrap(entry, fileID: .random()) }
            #expect(throws: FormatError.authenticationFailed) { try other.unwrap(entry, fileID: fek.fileID) }
            var tampered = entry
            tampered.wrappedKey[i * 7 % entry.wrappedKey.count] ^= 0x01
            #expect(throws: FormatError.authenticationFailed) { try key.unwrap(tampered, fileID: fek.fileID) }
            var short = entry
            short.wrappedKey.removeLast()
            #expect(throws: FormatError.authenticationFailed) { try key.unwrap(short, fileID: fek.fileID) }
        }
        #expect(encs.count == 1)
        #expect(wrapIDs.count == 50)
        // A new encapsulation has a new ephemeral key; RSA certificates have none.
        let again = try #require(try cert.sharedEncapsulation())
        #expect(Array(try again.wrap(FileEncryptionKey.generate(fileID: .random())).wrappedKey[0..<encSize]) != encs.first)
        let rsa = try UserPrivateKey.generate(.rsa(bits: 2048)).makeSelfSignedCertificate(name: "rsa", recoveryAgent: false)
        #expect(try rsa.sharedEncapsulation() == nil)
    }
}
