// SPDX-License-Identifier: Apache-2.0
// This file is part of swift-efs. See LICENSE for details.

import EFS
import CFUSE
@testable import EFSFUSE
import EFSSystem
import EFSTestSupport
import Foundation
import SystemPackage
import Testing

/// FUSE over io_uring (Linux 6.14 and later with `fuse.enable_uring` on; `.ci/run` turns it on). The rest of the
/// mount suites run on whichever channel `--io-uring auto` picks (io_uring as root here); the fsx run repeats on
/// /dev/fuse.
enum IOURing {
    static let parameter = "/sys/module/fuse/parameters/enable_uring"
    static var kernelAllows: Bool {
        ((try? String(contentsOfFile: parameter, encoding: .utf8)) ?? "").hasPrefix("Y")
    }

    /// The daemon's io_uring descriptors (`anon_inode:[io_uring]` in /proc/PID/fd).
    static func rings(of pid: Int32) -> Int {
        let dir = "/proc/\(pid)/fd"
        let names = (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []
        return names.filter { (try? FileManager.default.destinationOfSymbolicLink(atPath: "\(dir)/\($0)")) == "anon_inode:[io_uring]" }.count
    }

    /// Scheduling policy (field 41 of /proc/PID/task/TID/stat) of each of the daemon's threads.
    static func policies(of pid: Int32) -> [Int] {
        let dir = "/proc/\(pid)/task"
        return ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).compactMap { tid in
            guard let text = try? String(contentsOfFile: "\(dir)/\(tid)/stat", encoding: .utf8),
                  let paren = text.lastIndex(of: ")") else { return nil }
            // Fields from 3 on follow the last ')'; the policy is field 41.
            let fields = text[text.index(after: paren)...].split(separator: " ")
            return fields.count > 38 ? Int(fields[38]) : nil
        }
    }

    static let idlePolicy = 5

    /// Waits up to 15 s for at least `count` of the daemon's threads to be at the idle policy (the guard may have
    /// them at the normal one for a while on a busy machine).
    static func waitForIdleThreads(_ pid: Int32, atLeast count: Int) -> Bool {
        let deadline = Date().addingTimeInterval(15)
        while Date() < deadline {
            if policies(of: pid).filter({ $0 == idlePolicy }).count >= count { return true }
            Thread.sleep(forTimeInterval: 0.1)
        }
        return false
    }
}

@Suite("efs mount: FUSE over io_uring", .serialized, .enabled(if: FUSE.isAvailable && IOURing.kernelAllows, "needs FUSE and fuse.enable_uring"))
struct MountIOURingTests {
    @Test("requests come through a ring per CPU thread, at the idle policy, and every kind of call works")
    func servesThroughRings() throws {
        let m = try MountedVolume(options: ["--io-uring", "on"])
        defer { m.unmount() }
        // The first request waits for INIT, and INIT for the rings.
        _ = try Sys.stat(m.m("secret"))
        let cpus = ProcessInfo.processInfo.processorCount
        #expect(IOURing.rings(of: m.daemonPID) >= cpus, "one ring per thread, four threads per CPU")
        if getuid() == 0 {
            #expect(IOURing.waitForIdleThreads(m.daemonPID, atLeast: cpus), "the ring threads run at the idle policy")
        }
        // A little of everything: create, write (small, 1 MiB, past the end), read back, xattrs, rename,
        // readdir, truncate, link, unlink, mkdir, symlink, stat.
        let data = (0..<(1 << 20) + 4097).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }
        TestFiles.write(m.m("secret/big"), data)
        #expect(TestFiles.read(m.m("secret/big")) == data)
        TestFiles.write(m.m("secret/small"), Array("hello".utf8))
        let small = try Sys.open(m.m("secret/small"), .readOnly)
        try Sys.setXattr(small, "user.note", Array("x".utf8))
        #expect(try Sys.getXattr(small, "user.note") == Array("x".utf8))
        Sys.close(small)
        try Sys.rename(m.m("secret/small"), m.m("secret/renamed"))
        try FileManager.default.createDirectory(atPath: m.m("secret/dir").string, withIntermediateDirectories: false)
        try FileManager.default.createSymbolicLink(atPath: m.m("secret/link").string, withDestinationPath: "renamed")
        try Sys.link(m.m("secret/renamed"), m.m("secret/hard"))
        let names = try FileManager.default.contentsOfDirectory(atPath: m.m("secret").string).sorted()
        #expect(names == ["big", "dir", "hard", "link", "renamed"])
        try Sys.truncate(m.m("secret/big"), 10)
        #expect(try Sys.stat(m.m("secret/big")).size == 10)
        #expect(TestFiles.read(m.m("secret/link")) == Array("hello".utf8))
        try Sys.unlink(m.m("secret/hard"))
        #expect(try Sys.stat(m.m("secret/renamed")).linkCount == 1)
        m.unmount()
        // What went through the rings is on disk, encrypted, and the library reads it.
        let f = try m.alice.session.open(at: m.b("secret/renamed"))
        defer { try? f.close() }
        #expect(try f.read(at: 0, count: 100) == Array("hello".utf8))
        #expect(!TestFiles.contains(TestFiles.read(m.b("secret/renamed")), Array("hello".utf8)))
    }

    @Test("CPU-bound processes that do not use the mount do not starve it: the ring threads leave the idle policy while they run",
          .enabled(if: getuid() == 0, "moving threads back from SCHED_IDLE needs CAP_SYS_NICE"))
    func busyMachine() throws {
        let m = try MountedVolume(options: ["--io-uring", "on"])
        defer { m.unmount() }
        _ = try Sys.stat(m.m("secret"))
        // Idle first, or "promoted" below would prove nothing.
        #expect(IOURing.waitForIdleThreads(m.daemonPID, atLeast: ProcessInfo.processInfo.processorCount))
        // One busy loop per CPU, at the normal policy, that ends by itself after 60 s (if this process dies first)
        // and is killed below. SIGKILL: children of the test runner start with SIGTERM blocked.
        let hogs = (0..<ProcessInfo.processInfo.processorCount).map { _ -> Process in
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/bin/bash")
            p.arguments = ["-c", "while (( SECONDS < 60 )); do :; done"]
            try? p.run()
            return p
        }
        defer {
            for p in hogs where p.isRunning {
                kill(p.processIdentifier, SIGKILL)
                p.waitUntilExit()
            }
        }
        Thread.sleep(forTimeInterval: 0.3)
        // 1,000 new encrypted files written and read back: well under a second of the daemon's CPU time. Starved at
        // the idle policy (a share of 3/1027 next to each busy loop) they would take minutes.
        let start = Date()
        var promoted = false
        for i in 0..<1000 {
            let bytes = Array("file \(i)".utf8)
            TestFiles.write(m.m("secret/f\(i)"), bytes)
            #expect(TestFiles.read(m.m("secret/f\(i)")) == bytes)
            if i % 50 == 0 && IOURing.policies(of: m.daemonPID).filter({ $0 == IOURing.idlePolicy }).isEmpty { promoted = true }
        }
        let seconds = Date().timeIntervalSince(start)
        #expect(seconds < 30, "1,000 files next to busy loops took \(seconds) s")
        #expect(promoted, "the ring threads stayed at the idle policy next to busy loops")
    }

    @Test("--io-uring on fails with a one-line reason, before mounting, where the kernel does not allow it; auto then uses /dev/fuse",
          .enabled(if: FileManager.default.isWritableFile(atPath: IOURing.parameter), "needs to switch fuse.enable_uring"))
    func kernelRefuses() throws {
        try write(IOURing.parameter, "N")
        defer { try? write(IOURing.parameter, "Y") }
        let dir = TemporaryDirectory("efs-fuse-uring")
        let cli = CLIRunner(home: dir.appending("home"))
        #expect(cli.run(["key", "new", "--name", "alice", "--no-passphrase"]).status == 0)
        try FileManager.default.createDirectory(atPath: dir.appending("vol").string, withIntermediateDirectories: false)
        try FileManager.default.createDirectory(atPath: dir.appending("mnt").string, withIntermediateDirectories: false)
        #expect(cli.run(["init", dir.appending("vol").string]).status == 0)
        let r = cli.run(["mount", "--foreground", "--io-uring", "on", dir.appending("vol").string, dir.appending("mnt").string])
        #expect(r.status == 26)
        #expect(r.stderr.contains("enable_uring"))
        #expect(r.stderr.split(separator: "\n").count == 1)
        #expect(!FUSE.isMounted(dir.appending("mnt")))
        let m = try MountedVolume()
        defer { m.unmount() }
        TestFiles.write(m.m("secret/f"), Array("through /dev/fuse".utf8))
        #expect(TestFiles.read(m.m("secret/f")) == Array("through /dev/fuse".utf8))
        #expect(IOURing.rings(of: m.daemonPID) == 0)
    }

    private func write(_ path: String, _ value: String) throws {
        let fd = try Sys.open(FilePath(path), .writeOnly)
        defer { Sys.close(fd) }
        try Sys.writeAll(fd, Array((value + "\n").utf8))
    }
}

/// The mount finds its own device number in /proc/self/mountinfo instead of asking itself with stat(2).
@Suite("efs mount: its device from mountinfo")
struct MountedDeviceTests {
    @Test("the last mount on the path wins; escaped spaces, tabs and backslashes match; other paths do not")
    func parses() {
        let info = """
            22 1 0:21 / /proc rw,nosuid shared:5 - proc proc rw
            40 22 0:45 / /tmp/a\\040b rw,nosuid shared:9 - fuse.efs efs:/v rw,user_id=0
            41 22 0:46 / /tmp/a\\011b\\134c rw - fuse.efs efs:/w rw
            42 22 0:47 / /tmp/a\\040b rw - fuse.efs efs:/v rw
            43 22 0:48 / /tmp/a rw - fuse.efs efs:/x rw
            44 22 0:49 /
            """
        let bytes = Array(info.utf8)
        #expect(EFSMount.mountedDevice(FilePath("/tmp/a b"), mountinfo: bytes) == "0:47")
        #expect(EFSMount.mountedDevice(FilePath("/tmp/a\tb\\c"), mountinfo: bytes) == "0:46")
        #expect(EFSMount.mountedDevice(FilePath("/tmp/a"), mountinfo: bytes) == "0:48")
        #expect(EFSMount.mountedDevice(FilePath("/tmp/ab"), mountinfo: bytes) == nil)
        #expect(EFSMount.mountedDevice(FilePath("/"), mountinfo: bytes) == nil)
        #expect(EFSMount.mountedDevice(FilePath("/x"), mountinfo: []) == nil)
    }

    @Test("a live mount's entry is found, with the device stat(2) reports")
    func live() throws {
        guard FUSE.isAvailable else { return }
        let m = try MountedVolume()
        defer { m.unmount() }
        let st = try Sys.stat(m.mountpoint)
        let major = ((st.device >> 8) & 0xfff) | ((st.device >> 32) & ~UInt64(0xfff))
        let minor = (st.device & 0xff) | ((st.device >> 12) & ~UInt64(0xff))
        #expect(EFSMount.mountedDevice(m.mountpoint) == "\(major):\(minor)")
    }
}

/// The kernel has a queue per possible CPU; the mount counts them from /sys/devices/system/cpu/possible.
@Suite("efs mount: possible CPUs")
struct PossibleCPUsTests {
    @Test("ranges and lists count every CPU once; anything malformed is refused", arguments: [
        ("0", 1), ("0-1\n", 2), ("0-63\n", 64), ("0,2-5\n", 5), ("1,3,5", 3), ("0-1,4-7\n", 6),
        ("", -1), ("\n", -1), ("a", -1), ("3-1", -1), ("0,,1", -1), ("0-", -1), ("-1", -1), ("0-1-2", -1), ("0 1", -1),
    ])
    func counts(_ sample: (String, Int)) {
        #expect(sample.0.withCString { cfuse_count_cpu_list($0) } == Int32(sample.1), "\(sample.0.debugDescription)")
    }
}
