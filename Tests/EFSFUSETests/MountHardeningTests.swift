// SPDX-License-Identifier: Apache-2.0
// This file is part of swift-efs. See LICENSE for details.

import EFSTestSupport
import Foundation
import SystemPackage
import Testing

/// The mount daemon keeps its unlocked keys out of swap: its memory is locked (`mlockall`, as root here).
@Suite("efs mount: secrets stay in memory", .enabled(if: FUSE.isAvailable, "needs /dev/fuse and fusermount3"))
struct MountHardeningTests {
    /// The pid of the `efs mount` process serving `mountpoint`, found in /proc.
    static func daemon(serving mountpoint: FilePath) -> Int32? {
        let fm = FileManager.default
        for name in (try? fm.contentsOfDirectory(atPath: "/proc")) ?? [] {
            guard let pid = Int32(name), let data = fm.contents(atPath: "/proc/\(name)/cmdline") else { continue }
            let args = data.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
            if args.contains("mount"), args.last == mountpoint.string, args.first?.hasSuffix("efs") == true { return pid }
        }
        return nil
    }

    @Test("the serving process has its memory locked")
    func memoryLocked() throws {
        try #require(geteuid() == 0, "mlockall needs root or an unlimited RLIMIT_MEMLOCK")
        let m = try MountedVolume()
        defer { m.unmount() }
        let pid = try #require(Self.daemon(serving: m.mountpoint), "no efs mount process found for \(m.mountpoint)")
        let status = try String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)
        let line = try #require(status.split(separator: "\n").first { $0.hasPrefix("VmLck:") })
        let kib = Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "") ?? 0
        #expect(kib > 0, "VmLck of the daemon: \(line)")
        #expect(!m.log.contains("memory not locked"), "no warning as root: \(m.log)")
    }
}
