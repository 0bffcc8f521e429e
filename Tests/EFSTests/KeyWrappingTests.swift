// SPDX-License-Identifier: Apache-2.0
// This file is part of swift-efs. See LICENSE for details.

@testable import EFS
import EFSCore
import EFSSystem
import EFSTestSupport
import Foundation
import SystemPackage
import Testing

@Suite("Shared encapsulations for the files a session creates")
struct KeyWrappingTests {
    /// The `enc` of a file's first DDF or DRF entry (65 bytes for P-256).
    func enc(_ path: FilePath, agent: Bool = false) throws -> [UInt8] {
        let fd = try Sys.open(path, .readOnly)
        defer { Sys.close(fd) }
        let meta = try EncryptedFileInfo.read(fd, path: path).metadata
        let entry = agent ? meta.recoveryAgents[0] : meta.users[0]
        #expect(entry.algorithm == .hpkeP256Shared)
        return Array(entry.wrappedKey[0..<65])
    }

    @Test("creates share an encapsulation per certificate; each file has its own key, for the current key and the agents")
    func createsShareAnEncapsulation() throws {
        let f = try Fixture()
        let volume = try Volume.find(containing: f.volume)
        let s = f.alice.session
        var ids = Set<FileID>()
        for i in 0..<20 {
            let p = f.volume.appending("f\(i)")
            let file = try s.createEncryptedFile(at: p, displayPath: FilePath("f\(i)"), mode: 0o644, volume: volume)
            try file.write(Array("file \(i)".utf8), at: 0)
            try file.close()
            let fd = try Sys.open(p, .readOnly)
            defer { Sys.close(fd) }
            #expect(ids.insert(try EncryptedFileInfo.read(fd, path: p).header.fileID).inserted, "file id reused")
            #expect(try s.open(at: p).read(at: 0, count: 100) == Array("file \(i)".utf8))
            #expect(try f.agent.session.open(at: p).read(at: 0, count: 100) == Array("file \(i)".utf8))
            #expect(try s.queryUsers(at: p).map(\.displayName) == ["alice"])
            #expect(try s.queryRecoveryAgents(at: p).map(\.displayName) == ["agent"])
        }
        let users = try Set((0..<20).map { i in try enc(f.volume.appending("f\(i)")) })
        let agents = try Set((0..<20).map { i in try enc(f.volume.appending("f\(i)"), agent: true) })
        #expect(users.count == 1 && agents.count == 1 && users != agents)
        #expect(s.wrapping.heldCount == 2)
    }

    @Test("an encapsulation is replaced after its last use and when it ages out")
    func encapsulationsAreReplaced() throws {
        let f = try Fixture()
        let cert = f.alice.certificate
        let byCount = KeyWrapping(maximumUses: 3)
        let first = try (0..<7).map { _ in try byCount.wrap(FileEncryptionKey.generate(fileID: .random()), for: cert) }
        let encs = first.map { Array($0.wrappedKey[0..<65]) }
        #expect(Set(encs[0..<3]).count == 1 && Set(encs[3..<6]).count == 1 && encs[0] != encs[3] && encs[6] != encs[3])
        let byAge = KeyWrapping(lifetime: .zero)
        let a = try byAge.wrap(FileEncryptionKey.generate(fileID: .random()), for: cert)
        let b = try byAge.wrap(FileEncryptionKey.generate(fileID: .random()), for: cert)
        #expect(a.wrappedKey[0..<65] != b.wrappedKey[0..<65])
        #expect(byAge.heldCount == 1)
    }

    @Test("an encapsulation is released once aged out or used up, with no EC wrap after it: by releaseExpired (the mount's tick) or an RSA wrap")
    func releasedWithoutFurtherUse() throws {
        let f = try Fixture()
        let cert = f.alice.certificate
        let byAge = KeyWrapping(lifetime: .seconds(1))
        _ = try byAge.wrap(FileEncryptionKey.generate(fileID: .random()), for: cert)
        byAge.releaseExpired()
        #expect(byAge.heldCount == 1, "still young")
        Thread.sleep(forTimeInterval: 1.1)
        byAge.releaseExpired()
        #expect(byAge.heldCount == 0)
        let byCount = KeyWrapping(maximumUses: 1)
        _ = try byCount.wrap(FileEncryptionKey.generate(fileID: .random()), for: cert)
        byCount.releaseExpired()
        #expect(byCount.heldCount == 0, "used up")
        let rsa = try f.alice.store.generateKey(name: "alice-rsa", kind: .rsa(bits: 2048), recoveryAgent: false, passphrase: nil)
        let beforeRSA = KeyWrapping(lifetime: .seconds(1))
        _ = try beforeRSA.wrap(FileEncryptionKey.generate(fileID: .random()), for: cert)
        Thread.sleep(forTimeInterval: 1.1)
        _ = try beforeRSA.wrap(FileEncryptionKey.generate(fileID: .random()), for: rsa)
        #expect(beforeRSA.heldCount == 0, "an RSA wrap releases what has aged out")
    }

    @Test("after 'efs key use' a create gets the new current key, and RSA certificates are wrapped one by one")
    func switchingTheCurrentKey() throws {
        let f = try Fixture()
        let volume = try Volume.find(containing: f.volume)
        let s = f.alice.session
        try s.createEncryptedFile(at: f.volume.appending("a"), displayPath: "a", mode: 0o644, volume: volume).close()
        // A second key in alice's store becomes current (as `efs key use` does: the pointer file is replaced).
        let second = try f.alice.store.generateKey(name: "alice-rsa", kind: .rsa(bits: 2048), recoveryAgent: false, passphrase: nil)
        #expect(f.alice.store.currentThumbprint() == second.thumbprint)
        for name in ["b", "c"] {
            let p = f.volume.appending(name)
            let file = try s.createEncryptedFile(at: p, displayPath: FilePath(name), mode: 0o644, volume: volume)
            try file.write(Array(name.utf8), at: 0)
            try file.close()
            #expect(try s.queryUsers(at: p).map(\.displayName) == ["alice-rsa"])
            #expect(try s.queryUsers(at: p).map(\.algorithm) == [.rsaOAEPSHA256])
            #expect(try s.open(at: p).read(at: 0, count: 10) == Array(name.utf8))
        }
        #expect(try s.queryUsers(at: f.volume.appending("a")).map(\.displayName) == ["alice"])
    }
}
