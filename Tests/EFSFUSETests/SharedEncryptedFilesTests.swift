// SPDX-License-Identifier: Apache-2.0
// This file is part of swift-efs. See LICENSE for details.

import EFS
import EFSSystem
import EFSTestSupport
import Foundation
import SystemPackage
import Testing

@testable import EFSFUSE

@Suite("efs mount: shared handles", .enabled(if: FUSE.isAvailable, "needs /dev/fuse and fusermount3"))
struct SharedEncryptedFilesTests {
    @Test("regression: a writable open that replaces the shared read-only handle leaves it working for a read that took it")
    func upgradeKeepsTheOldHandleReadable() throws {
        // Found by review: the upgrade closed the read-only handle at once, so a read that had taken it just before
        // ran on a closed (or reused) descriptor and failed with EINVAL or EIO.
        let m = try MountedVolume()
        m.unmount()
        let path = m.b("secret/shared.bin")
        let bytes = TestFiles.bytes(300_000, seed: 12)
        guard case .encrypted(let f) = try m.alice.session.createFile(at: path) else {
            Issue.record("secret is not an encrypted directory")
            return
        }
        try f.write(bytes, at: 0)
        try f.close()
        let shared = SharedEncryptedFiles()
        let id = BackingID(try Sys.lstat(path))
        let open = { (w: Bool) throws(EFSError) -> EncryptedFile in
            try m.alice.session.open(at: path, displayPath: path, writable: w, deferSizeUpdates: true)
        }
        let reader = try shared.acquire(id, writable: false) { (_: Bool) throws(EFSError) in try open(false) }
        let taken = shared.file(reader)  // what a read in flight holds
        #expect(!taken.writable)
        let writer = try shared.acquire(id, writable: true, open: open)
        #expect(writer === reader && shared.file(writer).writable)
        // The old handle still reads (its large-read path too), and the writable one holds the exclusive lock.
        #expect(try taken.read(at: 0, count: 4_096) == Array(bytes[0..<4_096]))
        #expect(try taken.read(at: 0, count: bytes.count) == bytes)
        #expect(throws: EFSError.self) { try m.alice.session.open(at: path) }
        try shared.release(writer)
        try shared.release(reader)
        // The last release closed both handles and their locks.
        #expect(throws: EFSError.self) { try taken.read(at: 0, count: 1) }
        #expect(try m.alice.session.open(at: path).read(at: 0, count: 10) == Array(bytes[0..<10]))
    }

    @Test("a writable open that cannot replace the shared handle leaves the file locked for the readers")
    func failedUpgradeKeepsTheLock() throws {
        // The upgrade gives up the read-only handle's lock before the writable open. When that open and a new
        // read-only one both fail, the old handle must take its shared lock back: served unlocked, the file could be
        // raw-imported over or encrypted in place while the mount reads it.
        let m = try MountedVolume()
        m.unmount()
        let path = m.b("secret/locked.bin")
        guard case .encrypted(let f) = try m.alice.session.createFile(at: path) else {
            Issue.record("secret is not an encrypted directory")
            return
        }
        try f.write(Array("still shared".utf8), at: 0)
        try f.close()
        let shared = SharedEncryptedFiles()
        let id = BackingID(try Sys.lstat(path))
        let reader = try shared.acquire(id, writable: false) { (_: Bool) throws(EFSError) in
            try m.alice.session.open(at: path, displayPath: path, writable: false, deferSizeUpdates: true)
        }
        #expect(throws: EFSError(.accessDenied, "")) {
            try shared.acquire(id, writable: true) { (_: Bool) throws(EFSError) -> EncryptedFile in
                throw EFSError(.accessDenied, "refused for the test")
            }
        }
        // Still served read-only, and still locked: a writable open elsewhere is a sharing violation.
        #expect(!shared.file(reader).writable)
        #expect(try shared.file(reader).read(at: 0, count: 100) == Array("still shared".utf8))
        #expect(throws: EFSError(.sharingViolation, "")) { try m.alice.session.open(at: path, writable: true) }
        try shared.release(reader)
        #expect(try m.alice.session.open(at: path, writable: true).read(at: 0, count: 5) == Array("still".utf8))
    }
}
