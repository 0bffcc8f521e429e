// SPDX-License-Identifier: Apache-2.0
// This file is part of swift-efs. See LICENSE for details.

import EFS
import EFSCore
import EFSSystem
import EFSTestSupport
import Foundation
import SystemPackage
import Testing

/// Whether this machine can mount FUSE file systems (`/dev/fuse` and `fusermount3`).
enum FUSE {
    static let fusermount: String? = ["/usr/bin/fusermount3", "/bin/fusermount3"].first {
        FileManager.default.isExecutableFile(atPath: $0)
    }
    static let isAvailable = FileManager.default.fileExists(atPath: "/dev/fuse") && fusermount != nil

    /// Whether `path` is a mount point now (`/proc/self/mountinfo`; test paths have no characters it escapes).
    static func isMounted(_ path: FilePath) -> Bool {
        guard let text = try? String(contentsOfFile: "/proc/self/mountinfo", encoding: .utf8) else { return false }
        return text.split(separator: "\n").contains { $0.split(separator: " ").dropFirst(4).first.map(String.init) == path.string }
    }

    @discardableResult
    static func run(_ executable: String, _ args: [String]) -> Int32 {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: executable)
        p.arguments = args
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        guard (try? p.run()) != nil else { return -1 }
        p.waitUntilExit()
        return p.terminationStatus
    }
}

/// A volume with alice's key (current), a recovery agent, an encrypted directory `secret`, and `efs mount
/// --foreground` of it on `mnt`. Always unmounted: ``unmount()`` in a `defer` of every test, and again on release.
///
/// With `servedBy: uid`, everything (key store, volume, mount point) belongs to that uid and the daemon runs as it:
/// root mounts and hands the mount over (`Tests/POSIX/serve-as.py`), and only that uid can use the mount.
final class MountedVolume: @unchecked Sendable {
    let dir = TemporaryDirectory("efs-fuse")
    let alice: TestUser
    let agent: TestUser
    let volume: FilePath
    let mountpoint: FilePath
    let logPath: FilePath
    private var process = Process()
    private var unmounted = false
    private var options: [String] = []
    /// Extra environment of the daemon for the next ``start()`` (e.g. `EFS_CRASH_AT`).
    var daemonEnvironment: [String: String] = [:]
    /// A command the daemon runs under (e.g. `prlimit --nofile=…`), for the next ``start()``.
    var daemonPrefix: [String] = []
    /// The uid the daemon runs as, when not the test's.
    let servedBy: UInt32?

    init(options: [String] = [], daemonPrefix: [String] = [], servedBy: UInt32? = nil) throws {
        alice = try TestUser("alice", in: dir)
        agent = try TestUser("agent", in: dir, recoveryAgent: true)
        volume = dir.appending("vol")
        mountpoint = dir.appending("mnt")
        logPath = dir.appending("mount.log")
        try FileManager.default.createDirectory(atPath: volume.string, withIntermediateDirectories: false)
        try FileManager.default.createDirectory(atPath: mountpoint.string, withIntermediateDirectories: false)
        _ = try Volume.initialize(at: volume, recoveryAgents: [agent.certificate])
        try FileManager.default.createDirectory(atPath: volume.appending("secret").string, withIntermediateDirectories: false)
        try alice.session.encryptFile(at: volume.appending("secret"))

        self.options = options
        self.daemonPrefix = daemonPrefix
        self.servedBy = servedBy
        if let uid = servedBy {
            // Others must reach the mount point; the tree becomes the daemon's.
            try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: dir.path.string)
            FileManager.default.createFile(atPath: logPath.string, contents: nil)
            guard FUSE.run("/bin/chown", ["-R", "\(uid):\(uid)", dir.path.string]) == 0 else {
                throw MountError(message: "cannot give \(dir.path) to uid \(uid)")
            }
        }
        try start()
    }

    /// Starts `efs mount --foreground` on the volume (again, after ``unmount()`` or ``kill()``).
    func start() throws {
        FileManager.default.createFile(atPath: logPath.string, contents: nil)
        let process = Process()
        self.process = process
        unmounted = false
        var command = daemonPrefix + [CLIRunner.locate(), "mount", "--foreground"] + options + [volume.string, mountpoint.string]
        if let uid = servedBy {
            command = [POSIXCalls.python, "-I", POSIXCalls.directory.appending("serve-as.py").string, "\(uid)", mountpoint.string]
                + command.dropLast() + ["@FD@"]
        }
        process.executableURL = URL(fileURLWithPath: command[0])
        process.arguments = Array(command.dropFirst())
        var env = ProcessInfo.processInfo.environment
        env["EFS_HOME"] = alice.store.root.string
        env.removeValue(forKey: "EFS_PASSPHRASE_FILE")
        for (k, v) in daemonEnvironment { env[k] = v }
        process.environment = env
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle(forWritingAtPath: logPath.string)
        try process.run()
        let deadline = Date().addingTimeInterval(20)
        while !FUSE.isMounted(mountpoint) {
            if !process.isRunning || Date() > deadline {
                unmount()
                throw MountError(message: "the mount did not come up: \(log)")
            }
            Thread.sleep(forTimeInterval: 0.02)
        }
    }

    /// `kill -9` of the mount daemon, then a lazy unmount of the dead mount point, as an administrator would.
    func kill() {
        FUSE.run("/bin/kill", ["-KILL", "\(process.processIdentifier)"])
        process.waitUntilExit()
        if let fm = FUSE.fusermount, FUSE.isMounted(mountpoint) { FUSE.run(fm, ["-u", "-z", mountpoint.string]) }
        unmounted = true
    }

    deinit { unmount() }

    struct MountError: Error, CustomStringConvertible {
        var message: String
        var description: String { message }
    }

    /// What the mount wrote to standard error.
    var log: String { (try? String(contentsOfFile: logPath.string, encoding: .utf8)) ?? "" }

    /// The daemon's process id (of `efs mount` itself unless `servedBy` or a `daemonPrefix` wraps it).
    var daemonPID: Int32 { process.processIdentifier }

    /// Unmounts (lazily if a plain unmount fails) and waits for the daemon to exit. Safe to call twice.
    func unmount() {
        if unmounted { return }
        unmounted = true
        if let fm = FUSE.fusermount, FUSE.isMounted(mountpoint) {
            if FUSE.run(fm, ["-u", mountpoint.string]) != 0 {
                FUSE.run(fm, ["-u", "-z", mountpoint.string])
            }
        }
        let deadline = Date().addingTimeInterval(10)
        while process.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.02) }
        if process.isRunning {
            process.terminate()
            Thread.sleep(forTimeInterval: 0.5)
            if process.isRunning { FUSE.run("/bin/kill", ["-KILL", "\(process.processIdentifier)"]) }
        }
    }

    /// The daemon's exit status (after ``unmount()``).
    var exitStatus: Int32? { process.isRunning ? nil : process.terminationStatus }

    func stopWithSignal() {
        process.terminate()
        let deadline = Date().addingTimeInterval(10)
        while process.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.02) }
    }

    /// A path in the mount.
    func m(_ name: String) -> FilePath { mountpoint.appending(name) }
    /// The same path in the backing store.
    func b(_ name: String) -> FilePath { volume.appending(name) }
}

/// Small file helpers on top of `Sys`, throwing `Errno`.
enum F {
    static func write(_ path: FilePath, _ bytes: [UInt8]) throws {
        let fd = try Sys.open(path, [.writeOnly, .create, .truncate], mode: [.ownerReadWrite, .groupRead, .otherRead])
        defer { Sys.close(fd) }
        try Sys.pwriteAll(fd, bytes, at: 0)
    }

    /// Writes `bytes` as the whole file and fsyncs it (what a crash must not lose).
    static func writeSynced(_ path: FilePath, _ bytes: [UInt8]) throws {
        let fd = try Sys.open(path, [.writeOnly, .create, .truncate], mode: [.ownerReadWrite])
        defer { Sys.close(fd) }
        try Sys.pwriteAll(fd, bytes, at: 0)
        try Sys.fsync(fd)
    }

    static func read(_ path: FilePath) throws(Errno) -> [UInt8] {
        let fd = try Sys.open(path, .readOnly)
        defer { Sys.close(fd) }
        var out: [UInt8] = []
        while true {
            let chunk = try Sys.pread(fd, count: 1 << 20, at: Int64(out.count))
            if chunk.isEmpty { return out }
            out += chunk
        }
    }

    /// The errno a throwing call failed with, or nil.
    static func errno(_ body: () throws -> Void) -> Errno? {
        do {
            try body()
            return nil
        } catch let e as Errno {
            return e
        } catch {
            return Errno(rawValue: -1)
        }
    }

    /// Whether `needle` occurs in `haystack`.
    static func contains(_ haystack: [UInt8], _ needle: [UInt8]) -> Bool { TestFiles.contains(haystack, needle) }
}
