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
}
