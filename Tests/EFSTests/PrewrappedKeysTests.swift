// SPDX-License-Identifier: Apache-2.0
// This file is part of swift-efs. See LICENSE for details.

@testable import EFS
import EFSCore
import EFSSystem
import EFSTestSupport
import Foundation
import SystemPackage
import Testing

@Suite("Keys wrapped ahead of time for the mount's creates")
struct PrewrappedKeysTests {
    /// Waits (up to 20 s) until the pool holds `count` keys.
    func waitForPool(_ session: EFSSession, _ count: Int) async throws {
        for _ in 0..<2000 where session.prewrapped.readyCount < count { try await Task.sleep(for: .milliseconds(10)) }
        #expect(session.prewrapped.readyCount == count)
    }

    @Test("creates use pooled keys: each file has its own key, for the current key and the volume's agents")
    func pooledKeysAreFreshAndComplete() async throws {
        let f = try Fixture()
        let volume = try Volume.find(containing: f.volume)
        let s = f.alice.session
        var ids = Set<FileID>()
        // The first create starts the pool; then more files than it holds: taken from it, then made inline or from
        // the refill.
        let firstFile = try s.createEncryptedFile(at: f.volume.appending("first"), displayPath: "first", mode: 0o644, volume: volume)
        try firstFile.close()
        try await waitForPool(s, s.prewrapped.capacity)
        for i in 0..<(s.prewrapped.capacity + 8) {
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
    }

    @Test("after 'efs key use' a create never gets a key wrapped for the previous current key")
    func switchingTheCurrentKeyEmptiesThePool() async throws {
        let f = try Fixture()
        let volume = try Volume.find(containing: f.volume)
        let s = f.alice.session
        let first = try s.createEncryptedFile(at: f.volume.appending("a"), displayPath: "a", mode: 0o644, volume: volume)
        try first.close()
        try await waitForPool(s, s.prewrapped.capacity)
        // A second key in alice's store becomes current (as `efs key use` does: the pointer file is replaced).
        let second = try f.alice.store.generateKey(name: "alice-2", kind: .p384, recoveryAgent: false, passphrase: nil)
        #expect(f.alice.store.currentThumbprint() == second.thumbprint)
        for name in ["b", "c"] {
            let file = try s.createEncryptedFile(at: f.volume.appending(name), displayPath: FilePath(name), mode: 0o644, volume: volume)
            try file.close()
            #expect(try s.queryUsers(at: f.volume.appending(name)).map(\.displayName) == ["alice-2"])
        }
        #expect(try s.queryUsers(at: f.volume.appending("a")).map(\.displayName) == ["alice"])
        try await waitForPool(s, s.prewrapped.capacity)
    }

    @Test("a key that cannot be made is reported to the caller, and the pool stays empty")
    func failureReachesTheCaller() throws {
        let pool = PrewrappedKeys(capacity: 4) { _, _ throws(EFSError) in throw EFSError(.notSupported, "refused") }
        let f = try Fixture()
        #expect(throws: EFSError(.notSupported, "")) { try pool.take(users: [f.alice.certificate], agents: []) }
        #expect(pool.readyCount == 0)
    }
}
