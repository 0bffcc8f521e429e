// SPDX-License-Identifier: Apache-2.0
// This file is part of swift-efs. See LICENSE for details.

@testable import EFS
import EFSCore
import EFSSystem
import EFSTestSupport
import Foundation
import SystemPackage
import Testing

@Suite("Users, recovery agents and rekey")
struct UsersTests {
    func dataRegion(_ p: FilePath) -> [UInt8] {
        let b = TestFiles.read(p)
        let cap = Int(b[32]) | Int(b[33]) << 8 | Int(b[34]) << 16 | Int(b[35]) << 24
        return Array(b[(4096 + 2 * cap)...])
    }

    @Test("add and remove users rewrite only the metadata")
    func addRemove() throws {
        let f = try Fixture()
        let bob = try TestUser("bob", in: f.dir, kind: .p384)
        let carol = try TestUser("carol", in: f.dir, kind: .rsa(bits: 2048))
        let plain = TestFiles.bytes(50_000, seed: 5)
        let p = f.file("shared.bin", plain)
        try f.alice.session.encryptFile(at: p)
        let data = dataRegion(p)
        #expect(throws: EFSError(.noKey, "")) { try bob.session.open(at: p) }
        try f.alice.session.addUsers(at: p, certificates: [bob.certificate, carol.certificate, bob.certificate])
        #expect(dataRegion(p) == data)
        #expect(try f.alice.session.queryUsers(at: p).map(\.displayName) == ["alice", "bob", "carol"])
        #expect(try f.alice.session.queryRecoveryAgents(at: p).map(\.displayName) == ["agent"])
        #expect(try bob.session.open(at: p).read(at: 0, count: 50_000) == plain)
        #expect(try carol.session.open(at: p).read(at: 0, count: 50_000) == plain)
        // Adding someone already there changes nothing.
        let before = TestFiles.read(p)
        try f.alice.session.addUsers(at: p, certificates: [bob.certificate])
        #expect(TestFiles.read(p) == before)
        // Bob removes alice; unknown hashes are ignored.
        let unknown = try #require(Thumbprint(String(repeating: "AB", count: 20)))
        try bob.session.removeUsers(at: p, thumbprints: [f.alice.certificate.thumbprint, unknown])
        #expect(dataRegion(p) == data)
        #expect(throws: EFSError(.noKey, "")) { try f.alice.session.open(at: p) }
        try carol.session.removeUsers(at: p, thumbprints: [bob.certificate.thumbprint])
        #expect(throws: EFSError(.lastUser, "")) { try carol.session.removeUsers(at: p, thumbprints: [carol.certificate.thumbprint]) }
        #expect(try carol.session.open(at: p).read(at: 0, count: 50_000) == plain)
        // The recovery agent can always add users back.
        try f.agent.session.addUsers(at: p, certificates: [f.alice.certificate])
        #expect(try f.alice.session.open(at: p).read(at: 0, count: 50_000) == plain)
    }

    @Test("many users outgrow the slot: the file is rebuilt, data copied unchanged")
    func rebuild() throws {
        let f = try Fixture()
        let plain = TestFiles.bytes(20_000, seed: 8)
        let p = f.file("big.bin", plain)
        try f.alice.session.encryptFile(at: p)
        let data = dataRegion(p)
        var certs: [EFSCertificate] = []
        for i in 0..<30 {
            let k = try UserPrivateKey.generate(.p256)
            certs.append(try k.makeSelfSignedCertificate(name: "user \(i)", recoveryAgent: false))
        }
        try f.alice.session.addUsers(at: p, certificates: certs)
        #expect(dataRegion(p) == data)
        #expect(try f.alice.session.queryUsers(at: p).count == 31)
        #expect(try f.alice.session.open(at: p).read(at: 0, count: 20_000) == plain)
        #expect(try f.agent.session.open(at: p).read(at: 0, count: 20_000) == plain)
        // Metadata past the one-read prefix of EncryptedFileInfo: its slots are read on their own, and the file
        // still travels raw.
        let fd = try Sys.open(p, .readOnly)
        defer { Sys.close(fd) }
        #expect(try EncryptedFileInfo.read(fd, path: p).header.dataOffset > UInt64(EncryptedFileInfo.BackingReader.prefixSize))
        let copy = f.volume.appending("big-copy.bin")
        try importRaw(try exportRaw(p), to: copy)
        #expect(try f.alice.session.open(at: copy).read(at: 0, count: 20_001) == plain)
    }

    @Test("rekey moves files to the current key and to the volume's new recovery policy")
    func rekey() throws {
        let f = try Fixture()
        let p = f.file("r.bin", Array("rekey me".utf8))
        try f.alice.session.encryptFile(at: p)
        let old = f.alice.certificate
        let newCert = try f.alice.store.generateKey(name: "alice 2", kind: .p256, recoveryAgent: false, passphrase: nil)
        let agent2 = try TestUser("agent2", in: f.dir, recoveryAgent: true)
        var v = try #require(try Volume.find(containing: f.volume))
        try v.setRecoveryAgents([agent2.certificate])
        #expect(throws: EFSError(.noKey, "")) { try agent2.session.open(at: p) }
        let results = try f.alice.session.rekey(at: f.volume, recursive: true)
        #expect(results.map(\.outcome) == [.updated])
        #expect(try f.alice.session.queryUsers(at: p).map(\.thumbprint) == [newCert.thumbprint])
        #expect(try f.alice.session.queryUsers(at: p).map(\.thumbprint) != [old.thumbprint])
        #expect(try f.alice.session.queryRecoveryAgents(at: p).map(\.thumbprint) == [agent2.certificate.thumbprint])
        #expect(try agent2.session.open(at: p).read(at: 0, count: 8) == Array("rekey me".utf8))
        #expect(throws: EFSError(.noKey, "")) { try f.agent.session.open(at: p) }
        #expect(try f.alice.session.rekey(at: p, recursive: false).map(\.outcome) == [.unchanged])
        // A file alice cannot open is skipped, not an error.
        let mallory = try TestUser("mallory", in: f.dir)
        let m = f.file("m.bin", [1])
        try mallory.session.encryptFile(at: m)
        let r = try f.alice.session.rekey(at: m, recursive: false)
        guard case .skipped = r.first?.outcome else { Issue.record("expected a skip"); return }
    }

    @Test("DuplicateEncryptionInfoFile copies users and agents with a new key")
    func duplicate() throws {
        let f = try Fixture()
        let bob = try TestUser("bob", in: f.dir)
        let src = f.file("src.bin", Array("source".utf8))
        try f.alice.session.encryptFile(at: src)
        try f.alice.session.addUsers(at: src, certificates: [bob.certificate])
        let dst = f.volume.appending("dst.bin")
        try f.alice.session.duplicateEncryptionInfo(from: src, to: dst, failIfExists: true)
        #expect(try bob.session.queryUsers(at: dst).map(\.displayName) == ["alice", "bob"])
        #expect(try bob.session.open(at: dst).size == 0)
        #expect(throws: EFSError(.alreadyExists, "")) { try f.alice.session.duplicateEncryptionInfo(from: src, to: dst, failIfExists: true) }
        try f.alice.session.duplicateEncryptionInfo(from: src, to: dst, failIfExists: false)
        let d = f.volume.appending("d")
        try FileManager.default.createDirectory(atPath: d.string, withIntermediateDirectories: false)
        try f.alice.session.encryptFile(at: d)
        try f.alice.session.duplicateEncryptionInfo(from: d, to: f.volume.appending("d2"), failIfExists: true)
        #expect(try f.alice.session.fileEncryptionStatus(at: f.volume.appending("d2")) == .encrypted)
        #expect(throws: EFSError(.notEncrypted, "")) {
            try f.alice.session.duplicateEncryptionInfo(from: f.file("plain", [1]), to: f.volume.appending("x"), failIfExists: true)
        }
    }

    @Test("passphrase-protected keys: wrong passphrase fails clearly, right one works")
    func passphrases() throws {
        let dir = TemporaryDirectory()
        let store = KeyStore(root: dir.appending("home"))
        let cert = try store.generateKey(name: "pat", kind: .p256, recoveryAgent: false, passphrase: Passphrase(Array("s3cret".utf8)), iterations: 2000)
        let keyFile = TestFiles.read(dir.appending("home/keys/\(cert.thumbprint.hex).pem"))
        #expect(String(decoding: keyFile, as: UTF8.self).contains("ENCRYPTED PRIVATE KEY"))
        let vol = dir.appending("vol")
        try FileManager.default.createDirectory(atPath: vol.string, withIntermediateDirectories: false)
        _ = try Volume.initialize(at: vol, recoveryAgents: [])
        let p = vol.appending("f")
        TestFiles.write(p, Array("pp".utf8))
        let good = EFSSession(keyStore: store, passphrase: { _ in Passphrase(Array("s3cret".utf8)) })
        try good.encryptFile(at: p)
        #expect(try good.open(at: p).read(at: 0, count: 2) == Array("pp".utf8))
        let bad = EFSSession(keyStore: store, passphrase: { _ in Passphrase(Array("nope".utf8)) })
        #expect(throws: EFSError(.wrongPassphrase, "")) { try bad.open(at: p) }
        let none = EFSSession(keyStore: store, passphrase: nil)
        #expect(throws: EFSError(.wrongPassphrase, "")) { try none.open(at: p) }
        // Key-store files are 0600, directories 0700.
        for sub in ["", "/certs", "/keys"] {
            let a = try FileManager.default.attributesOfItem(atPath: dir.appending("home").string + sub)
            #expect((a[.posixPermissions] as? Int) == 0o700)
        }
        let a = try FileManager.default.attributesOfItem(atPath: dir.appending("home/keys/\(cert.thumbprint.hex).pem").string)
        #expect((a[.posixPermissions] as? Int) == 0o600)
    }

    @Test("thumbprints resolve from full text, spaces, lower case and unique prefixes")
    func resolve() throws {
        let f = try Fixture()
        let t = f.alice.certificate.thumbprint
        #expect(try f.alice.store.resolve(t.description) == t)
        #expect(try f.alice.store.resolve(t.hex.lowercased()) == t)
        #expect(try f.alice.store.resolve(String(t.hex.prefix(8))) == t)
        #expect(throws: EFSError(.invalidArgument, "")) { try f.alice.store.resolve(String(t.hex.prefix(7))) }
        #expect(throws: EFSError(.invalidArgument, "")) { try f.alice.store.resolve("xyz") }
        #expect(throws: EFSError(.fileNotFound, "")) { try f.alice.store.resolve("00000000") }
    }
}
