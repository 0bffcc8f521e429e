// SPDX-License-Identifier: Apache-2.0
// This file is part of swift-efs. See LICENSE for details.

import EFS
import EFSCore
import EFSSystem
import EFSTestSupport
import Foundation
import SystemPackage
import Testing

/// The shortcuts of the mount's create and append paths keep their promises: a create follows `efs key use`, and
/// an append that skips the redo record (blocks no size record on disk covers yet) survives a crash at every torn
/// write with the fsynced part intact.
@Suite("efs mount: create and append paths", .enabled(if: FUSE.isAvailable, "needs /dev/fuse and fusermount3"))
struct MountWritePathTests {
    @Test("a file created after 'efs key use' is encrypted for the new current key")
    func createFollowsKeyUse() throws {
        let m = try MountedVolume()
        defer { m.unmount() }
        try F.write(m.m("secret/first.txt"), Array("one".utf8))
        let cli = CLIRunner(home: m.alice.store.root)
        let made = cli.run(["key", "new", "--name", "alice2", "--no-passphrase"])
        try #require(made.status == 0, "efs key new: \(made.stderr)")
        let second = try #require(try m.alice.store.list().first { $0.certificate.displayName == "alice2" })
        let use = cli.run(["key", "use", second.thumbprint.hex])
        try #require(use.status == 0, "efs key use: \(use.stderr)")
        try F.write(m.m("secret/second.txt"), Array("two".utf8))
        #expect(try F.read(m.m("secret/second.txt")) == Array("two".utf8))
        m.unmount()
        func users(_ name: String) throws -> [Thumbprint] {
            let f = try m.alice.session.open(at: m.b("secret/\(name)"))
            defer { try? f.close() }
            return f.metadata.users.map(\.thumbprint)
        }
        #expect(try users("first.txt") == [m.alice.certificate.thumbprint])
        #expect(try users("second.txt") == [second.thumbprint], "the mount read the new current key")
    }

    @Test("tar-like appends torn by a crash keep the fsynced part; each block is old or new", .enabled(if: FaultInjection.isAvailable))
    func tornAppends() throws {
        let m = try MountedVolume()
        defer { m.unmount() }
        let bs = ContentCipher.blockSize
        // Two whole blocks, fsynced: every append lands in blocks past the size on disk (no redo record). An old
        // partial last block would be re-sealed through a redo record, and a crash that tears that record's
        // payload while the block grows leaves the block unreadable: recovery drops the torn record but cuts the
        // file at the record's `dataEnd`, past the block's old end, so the block reads zero-extended. That bug is
        // older than this path (main has it for every append to an fsynced partial block; see the known issue
        // below), so it is kept out of this test.
        let old = TestFiles.bytes(2 * ContentCipher.blockSize, seed: 41)
        let more = TestFiles.bytes(200_000, seed: 42)
        let new = old + more
        var checked = 0
        for n in 1...8 {
            for (name, synced) in [("grow.bin", old), ("fresh.bin", [UInt8]())] {
                try? Sys.unlink(m.m("secret/\(name)"))
                if !synced.isEmpty { try F.writeSynced(m.m("secret/\(name)"), synced) }
            }
            m.unmount()
            m.daemonEnvironment = ["EFS_CRASH_AT": "tear:\(n)"]
            try m.start()
            m.daemonEnvironment = [:]
            // Append in 10 KiB writes (what tar does) to both files until the daemon dies at its nth torn write.
            if let grow = try? Sys.open(m.m("secret/grow.bin"), .writeOnly),
               let fresh = try? Sys.open(m.m("secret/fresh.bin"), [.writeOnly, .create], mode: [.ownerReadWrite]) {
                var off = 0
                while off < more.count {
                    let chunk = more[off..<min(more.count, off + 10_240)]
                    guard (try? Sys.pwriteAll(grow, chunk, at: Int64(old.count + off))) != nil,
                          (try? Sys.pwriteAll(fresh, chunk, at: Int64(off))) != nil else { break }
                    off += chunk.count
                }
                Sys.close(grow)
                Sys.close(fresh)
            }
            m.kill()
            try m.start()
            for (name, before, after) in [("grow.bin", old, new), ("fresh.bin", [UInt8](), more)] {
                let now: [UInt8]
                do { now = try F.read(m.m("secret/\(name)")) } catch {
                    Issue.record("tear \(n): \(name) is unreadable after the crash (\(error)); log: \(m.log)")
                    continue
                }
                #expect(now.count >= before.count && now.count <= after.count, "tear \(n): \(name): size \(now.count)")
                #expect(now.prefix(before.count).elementsEqual(before), "tear \(n): \(name): the fsynced bytes survive")
                for start in stride(from: 0, to: now.count, by: bs) {
                    let end = min(now.count, start + bs)
                    let got = now[start..<end]
                    let isOld = end <= before.count && got.elementsEqual(before[start..<end])
                    let isNew = got.elementsEqual(after[start..<end])
                    #expect(isOld || isNew, "tear \(n): \(name): block at \(start) is neither old nor new")
                }
                checked += 1
            }
        }
        #expect(checked == 16)
        m.unmount()
        let check = CLIRunner(home: m.alice.store.root).run(["fsck", "--keys", m.volume.string])
        #expect(check.status == 0, "efs fsck after the crashes: \(check.stdout) \(check.stderr)")
    }

    @Test("an overwrite that fails with EIO halfway in place is redone before the next same-length overwrite on that handle reuses its record's place", .enabled(if: FaultInjection.isAvailable))
    func failedInPlaceWriteIsRedone() throws {
        let m = try MountedVolume()
        defer { m.unmount() }
        let bs = ContentCipher.blockSize
        let old = TestFiles.bytes(16 * bs, seed: 44)
        let first = TestFiles.bytes(bs, seed: 45), second = TestFiles.bytes(bs, seed: 46)
        var sawInterruptedThenRecovered = false
        for n in 1...6 {
            try? Sys.unlink(m.m("secret/o.bin"))
            try F.writeSynced(m.m("secret/o.bin"), old)
            m.unmount()
            // The nth write of the daemon that crosses a page goes down up to that page, then fails with EIO.
            m.daemonEnvironment = ["EFS_CRASH_AT": "fail:\(n)"]
            try m.start()
            m.daemonEnvironment = [:]
            let fd = try Sys.open(m.m("secret/o.bin"), .readWrite)
            let firstDone = (try? Sys.pwriteAll(fd, first, at: Int64(2 * bs))) != nil
            let secondDone = (try? Sys.pwriteAll(fd, second, at: Int64(5 * bs))) != nil
            Sys.close(fd)
            m.unmount()
            try m.start()
            let now: [UInt8]
            do { now = try F.read(m.m("secret/o.bin")) } catch {
                Issue.record("fail \(n): the file is unreadable (\(error)); log: \(m.log)")
                continue
            }
            try #require(now.count == old.count, "fail \(n): size \(now.count)")
            for b in 0..<16 {
                let got = Array(now[(b * bs)..<((b + 1) * bs)])
                let was = Array(old[(b * bs)..<((b + 1) * bs)])
                switch b {
                case 2: #expect(got == first || (!firstDone && got == was), "fail \(n): block 2 is neither old nor new")
                case 5: #expect(got == second || (!secondDone && got == was), "fail \(n): block 5 is neither old nor new")
                default: #expect(got == was, "fail \(n): block \(b) changed")
                }
            }
            if !firstDone && secondDone && Array(now[(2 * bs)..<(3 * bs)]) == first { sawInterruptedThenRecovered = true }
        }
        // Some n fails the first overwrite after its in-place write began: the second one redid it.
        #expect(sawInterruptedThenRecovered)
    }

    @Test("a torn redo record of a growing partial last block leaves that block readable", .enabled(if: FaultInjection.isAvailable))
    func tornGrowingRecord() throws {
        let m = try MountedVolume()
        defer { m.unmount() }
        let old = TestFiles.bytes(10_000, seed: 43)
        try F.writeSynced(m.m("secret/p.bin"), old)
        m.unmount()
        // The first write that crosses a page is the record's payload (the footer is one write inside one page).
        m.daemonEnvironment = ["EFS_CRASH_AT": "tear:1"]
        try m.start()
        m.daemonEnvironment = [:]
        if let fd = try? Sys.open(m.m("secret/p.bin"), .writeOnly) {
            _ = try? Sys.pwriteAll(fd, TestFiles.bytes(10_240, seed: 44), at: 10_000)
            Sys.close(fd)
        }
        m.kill()
        try m.start()
        // Recovery cuts the file at the record's dataEnd; the open finds the old block's end behind the zeros.
        #expect((try? F.read(m.m("secret/p.bin"))) == old)
    }
}
