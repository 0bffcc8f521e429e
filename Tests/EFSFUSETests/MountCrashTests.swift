// SPDX-License-Identifier: Apache-2.0
// This file is part of swift-efs. See LICENSE for details.

import EFS
import EFSCore
import EFSSystem
import EFSTestSupport
import Foundation
import Synchronization
import SystemPackage
import Testing

@Suite("efs mount: kill -9", .enabled(if: FUSE.isAvailable, "needs /dev/fuse and fusermount3"))
struct MountCrashTests {
    @Test("kill -9 of the mount loses no fsynced data; files being written are old or new per block, never unreadable")
    func killNine() throws {
        let m = try MountedVolume()
        defer { m.unmount() }
        let bs = ContentCipher.blockSize
        // Durable before the crash.
        let synced = TestFiles.bytes(1_000_003, seed: 1)
        try F.writeSynced(m.m("secret/synced.bin"), synced)
        let old = TestFiles.bytes(600_000, seed: 2)
        try F.writeSynced(m.m("secret/busy.bin"), old)
        // Being written when the daemon dies: busy.bin rewritten and grown in 64 KiB writes (each a run of whole
        // blocks), and grow.bin created and appended to, over and over, until the writes fail.
        let new = TestFiles.bytes(900_000, seed: 3)
        let writes = Atomic<Int>(0)
        let writer = Thread {
            guard let busy = try? Sys.open(m.m("secret/busy.bin"), .readWrite),
                  let grow = try? Sys.open(m.m("secret/grow.bin"), [.readWrite, .create], mode: [.ownerReadWrite]) else { return }
            defer {
                Sys.close(busy)
                Sys.close(grow)
            }
            var off = 0
            while true {
                let n = min(65_536, new.count - off)
                do {
                    try Sys.pwriteAll(busy, new[off..<(off + n)], at: Int64(off))
                    try Sys.pwriteAll(grow, new[off..<(off + n)], at: Int64(off))
                } catch {
                    return
                }
                writes.add(1, ordering: .relaxed)
                off = (off + n) % new.count
            }
        }
        writer.start()
        let deadline = Date().addingTimeInterval(20)
        while writes.load(ordering: .relaxed) < 40 && Date() < deadline { Thread.sleep(forTimeInterval: 0.01) }
        try #require(writes.load(ordering: .relaxed) >= 40, "the writer got going")
        m.kill()
        while !writer.isFinished && Date() < deadline { Thread.sleep(forTimeInterval: 0.01) }
        #expect(writer.isFinished, "writes fail once the daemon is gone")

        try m.start()
        #expect(try F.read(m.m("secret/synced.bin")) == synced, "fsynced data survives")
        for (name, before) in [("busy.bin", old), ("grow.bin", [UInt8]())] {
            let now: [UInt8]
            do { now = try F.read(m.m("secret/\(name)")) } catch {  // never unreadable
                m.unmount()
                let report = CLIRunner(home: m.alice.store.root).run(["fsck", "--keys", m.volume.string])
                Issue.record("\(name) is unreadable after the crash (\(error)); mount log: \(m.log); fsck: \(report.stdout) \(report.stderr)")
                return
            }
            #expect(now.count == before.count || now.count <= new.count, "\(name): size \(now.count) is an old or a new size")
            for start in stride(from: 0, to: now.count, by: bs) {
                let end = min(now.count, start + bs)
                let got = now[start..<end]
                let wasOld = end <= before.count && got.elementsEqual(before[start..<end])
                let isNew = end <= new.count && got.elementsEqual(new[start..<end])
                #expect(wasOld || isNew, "\(name): block at \(start) is neither the old nor the new data")
            }
        }
        // The file system check finds nothing wrong with the volume.
        m.unmount()
        let cli = CLIRunner(home: m.alice.store.root)
        let check = cli.run(["fsck", "--keys", m.volume.string])
        #expect(check.status == 0, "efs fsck after the crash: \(check.stdout) \(check.stderr)")
    }

    @Test("a write torn between two pages when the daemon dies leaves each block old or new", .enabled(if: FaultInjection.isAvailable))
    func tornWrites() throws {
        let m = try MountedVolume()
        defer { m.unmount() }
        let bs = ContentCipher.blockSize
        let old = TestFiles.bytes(300_000, seed: 21)
        let new = TestFiles.bytes(300_000, seed: 22)
        var torn = 0
        // Each overwrite puts down a redo record (footer, then payload) and then the bytes in place; the writes
        // that cross a page are the payload and the in-place write, so odd n tear a payload, even n an in-place write.
        for n in 1...8 {
            try F.writeSynced(m.m("secret/t.bin"), old)
            m.unmount()
            m.daemonEnvironment = ["EFS_CRASH_AT": "tear:\(n)"]
            try m.start()
            m.daemonEnvironment = [:]
            // Overwrite in place in 64 KiB writes until the daemon dies at its nth write that crosses a page.
            if let fd = try? Sys.open(m.m("secret/t.bin"), .readWrite) {
                var off = 0
                while off < new.count, (try? Sys.pwriteAll(fd, new[off..<min(new.count, off + 65_536)], at: Int64(off))) != nil {
                    off += 65_536
                }
                Sys.close(fd)
            }
            m.kill()
            try m.start()
            let now: [UInt8]
            do { now = try F.read(m.m("secret/t.bin")) } catch {
                Issue.record("tear \(n): the file is unreadable after a torn write (\(error)); log: \(m.log)")
                continue
            }
            #expect(now.count == old.count, "tear \(n): size")
            for start in stride(from: 0, to: now.count, by: bs) {
                let end = min(now.count, start + bs)
                let isOld = now[start..<end].elementsEqual(old[start..<end])
                let isNew = now[start..<end].elementsEqual(new[start..<end])
                #expect(isOld || isNew, "tear \(n): block at \(start) is neither old nor new")
            }
            torn += 1
        }
        #expect(torn == 8)
    }
}
