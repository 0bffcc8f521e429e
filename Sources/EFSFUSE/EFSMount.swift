// SPDX-License-Identifier: Apache-2.0
// This file is part of swift-efs. See LICENSE for details.

import CFUSE
import Dispatch
import EFS
import EFSSystem
import Synchronization
import SystemPackage

/// `efs mount`: serves a directory of an EFS volume through FUSE until it is unmounted or the process gets SIGINT,
/// SIGTERM or SIGHUP.
///
/// Encrypted files read and write as plaintext with the session's keys; plain files pass through; files created in
/// a directory marked encrypted are encrypted for the session's current key and the volume's recovery agents.
///
/// ```swift
/// try EFSMount.run(volume: "/data/vault", at: "/home/me/vault", session: session, options: MountOptions())
/// ```
public enum EFSMount {
    /// Mounts and serves. Returns after the file system is unmounted (or the process was signalled, in which case
    /// it unmounts itself).
    ///
    /// - Parameters:
    ///   - volume: the directory to serve: a volume root or a directory inside a volume.
    ///   - mountpoint: an existing directory.
    ///   - ready: called once the mount is in place (after daemonizing, in the background process).
    /// - Throws: ``EFSError`` with `notOnVolume` when `volume` is not on an EFS volume, `ioError` when the kernel
    ///   refuses the mount.
    public static func run(volume: FilePath, at mountpoint: FilePath, session: EFSSession, options: MountOptions,
                           ready: () -> Void = {}) throws {
        let root: FilePath
        do { root = try Sys.realpath(volume) } catch { throw EFSError(.fileNotFound, "\(volume): \(error)") }
        guard let vol = try Volume.find(containing: root) else {
            throw EFSError(.notOnVolume, "\(volume) is not on an EFS volume: run 'efs init DIR' on it or a directory above it")
        }
        let rootHandle: FileDescriptor
        do { rootHandle = try Sys.open(root, [.pathOnly, .directory]) } catch {
            throw EFSError(.fileNotFound, "\(volume): \(error)")
        }
        let rootStatus: FileStatus
        do { rootStatus = try Sys.fstat(rootHandle) } catch {
            Sys.close(rootHandle)
            throw EFSError(.ioError, "\(volume): \(error)")
        }
        let volumeRoot = (try? Sys.stat(vol.root)).map(BackingID.init)
        // Modes arrive from the kernel with the caller's umask applied; the daemon must not apply its own.
        _ = Sys.setUmask(0)
        // Every object the kernel has looked up holds an O_PATH descriptor until it is forgotten: raise the limit,
        // and keep the number of nodes well under it (see `Pruner`).
        let fileLimit = Sys.raiseOpenFileLimit()
        let fs = EFSFileSystem(session: session, rootHandle: rootHandle, rootStatus: rootStatus, volumeRoot: volumeRoot,
                               volume: vol, log: options.log)
        let userdata = Unmanaged.passRetained(fs)
        defer { userdata.release() }

        var mountOptions = ["default_permissions", "fsname=efs:\(root.string.replacing(",", with: "_"))", "subtype=efs"]
        mountOptions += options.fuseOptions
        var arguments = ["efs", "-o", mountOptions.joined(separator: ",")]
        if options.debug { arguments.append("-d") }
        try serve(fs: userdata, arguments: arguments, mountpoint: mountpoint, options: options, fileLimit: fileLimit, ready: ready)
    }

    private static func serve(fs userdata: Unmanaged<EFSFileSystem>, arguments: [String], mountpoint: FilePath,
                              options: MountOptions, fileLimit: UInt64, ready: () -> Void) throws {
        var cArguments: [UnsafeMutablePointer<CChar>?] = arguments.map { strdupCompat($0) } + [nil]
        defer { for p in cArguments { p?.deallocate() } }
        var ops = makeLowLevelOperations()
        try cArguments.withUnsafeMutableBufferPointer { argv in
            // FUSE_ARGS_INIT is a macro: build struct fuse_args by hand. libfuse copies what it keeps.
            var args = fuse_args(argc: Int32(arguments.count), argv: argv.baseAddress, allocated: 0)
            defer { fuse_opt_free_args(&args) }
            guard let se = fuse_session_new(&args, &ops, MemoryLayout<fuse_lowlevel_ops>.size, userdata.toOpaque()) else {
                throw EFSError(.invalidArgument, "cannot start the file system: bad mount options \(options.fuseOptions.joined(separator: ","))")
            }
            defer { fuse_session_destroy(se) }
            guard fuse_set_signal_handlers(se) == 0 else { throw EFSError(.ioError, "cannot install signal handlers") }
            defer { fuse_remove_signal_handlers(se) }
            _ = cfuse_unblock_exit_signals()
            // fuse_daemonize changes to "/": keep an absolute name of the mount point (taken before the mount, so
            // resolving it asks nothing of this file system).
            let absoluteMountpoint = (try? Sys.realpath(mountpoint)) ?? mountpoint
            if options.ioURing == .on && !options.singleThreaded && !kernelAllowsIOURing() {
                throw EFSError(.notSupported, "FUSE over io_uring is off in this kernel (Linux 6.14 or later: echo Y > /sys/module/fuse/parameters/enable_uring)")
            }
            let mounted = mountpoint.withPlatformString { fuse_session_mount(se, $0) }
            guard mounted == 0 else { throw EFSError(.ioError, "cannot mount on \(mountpoint) (see the message above)") }
            defer { fuse_session_unmount(se) }
            handleKillPrivilegesInDaemon(se)
            if !options.foreground {
                // fuse_daemonize points standard error at /dev/null; keep it when it goes to a file or pipe, so the
                // one-line reasons still reach a log.
                let keep = Sys.isTerminal(.standardError) ? nil : try? FileDescriptor.standardError.duplicate()
                _ = fuse_daemonize(0)
                if let keep {
                    _ = try? keep.duplicate(as: .standardError)
                    try? keep.close()
                }
            }
            // After the fork (threads do not survive it), before the loop reads INIT.
            var ringThreads = 0
            if !options.singleThreaded && options.ioURing != .off {
                ringThreads = startRingQueues(se, perCPU: options.ringThreadsPerCPU, onlyIfFaster: options.ioURing == .auto)
                if ringThreads == 0 && options.ioURing == .on {
                    throw EFSError(.notSupported, "cannot take requests through io_uring on this kernel")
                }
            }
            defer { stopRingQueues() }
            ready()
            raiseReadahead(absoluteMountpoint)
            let pruner = Pruner(session: se, fileSystem: userdata.takeUnretainedValue(), fileLimit: fileLimit)
            defer { pruner.stop() }
            let config = fuse_loop_cfg_create()
            defer { fuse_loop_cfg_destroy(config) }
            fuse_loop_cfg_set_max_threads(config, UInt32(options.maximumThreads))
            fuse_loop_cfg_set_idle_threads(config, UInt32(min(options.maximumThreads, 10)))
            let rc = options.singleThreaded ? fuse_session_loop(se) : cfuse_session_loop_mt(se, config)
            // The ring threads serve until stopped: stop them before the files close.
            if ringThreads > 0 {
                if options.debug {
                    let policy = ringQueuePolicy()
                    options.log("\(servingRingQueues()) of \(ringThreads) io_uring threads served requests; policy \(policy.idle ? "idle, moved to normal \(policy.promotions) times" : "normal")")
                }
                stopRingQueues()
            }
            userdata.takeUnretainedValue().encrypted.closeAll()
            if rc < 0 { throw EFSError(.ioError, "the file system stopped with error \(-rc)") }
        }
    }

    /// Raises the kernel's readahead window of the new mount to 1 MiB (best effort; needs root). FUSE mounts start
    /// at the block layer's default of 128 KiB, so sequential reads arrive as 128 KiB requests; bigger ones let the
    /// daemon decrypt on both cores per request.
    private static func raiseReadahead(_ mountpoint: FilePath) {
        guard let device = mountedDevice(mountpoint) else { return }
        let knob = FilePath("/sys/class/bdi/\(device)/read_ahead_kb")
        guard let fd = try? Sys.open(knob, .writeOnly) else { return }
        defer { Sys.close(fd) }
        try? Sys.writeAll(fd, Array("1024\n".utf8))
    }

    /// "MAJOR:MINOR" of the file system mounted on `mountpoint` (the last such mount), from /proc/self/mountinfo
    /// (proc(5): field 3, and field 5 with space, tab, newline and backslash as octal escapes). Not stat(2): that
    /// would be a request to this very mount, and a thread of the daemon waiting on its own mount can keep the
    /// dying daemon from ever closing /dev/fuse (the request, once handed to a ring thread that is gone, is waited
    /// for uninterruptibly).
    static func mountedDevice(_ mountpoint: FilePath, mountinfo: [UInt8]? = nil) -> String? {
        var text = mountinfo ?? []
        if mountinfo == nil {
            guard let fd = try? Sys.open(FilePath("/proc/self/mountinfo"), .readOnly) else { return nil }
            defer { Sys.close(fd) }
            while let chunk = try? Sys.read(fd, count: 65536), !chunk.isEmpty, text.count < 64 << 20 { text += chunk }
        }
        let target = Array(mountpoint.string.utf8)
        var found: String?
        for line in text.split(separator: UInt8(ascii: "\n")) {
            let fields = line.split(separator: UInt8(ascii: " "), omittingEmptySubsequences: false)
            guard fields.count > 4, unescapeMountField(fields[4]) == target else { continue }
            found = String(decoding: fields[2], as: UTF8.self)
        }
        return found
    }

    private static func unescapeMountField(_ field: ArraySlice<UInt8>) -> [UInt8] {
        var out: [UInt8] = []
        var i = field.startIndex
        while i < field.endIndex {
            let c = field[i]
            if c == UInt8(ascii: "\\"), field.endIndex - i >= 4,
               let v = UInt8(String(decoding: field[(i + 1)...(i + 3)], as: UTF8.self), radix: 8) {
                out.append(v)
                i += 4
            } else {
                out.append(c)
                i += 1
            }
        }
        return out
    }

    /// A C copy of a string, freed with `deallocate()`.
    private static func strdupCompat(_ s: String) -> UnsafeMutablePointer<CChar> {
        let utf8 = Array(s.utf8CString)
        let p = UnsafeMutablePointer<CChar>.allocate(capacity: utf8.count)
        p.initialize(from: utf8, count: utf8.count)
        return p
    }
}

/// When ``EFSMount`` takes requests through io_uring.
public enum IOURingMode: String, Sendable, CaseIterable {
    /// When the kernel allows it.
    case auto
    /// Always: the mount fails where the kernel does not allow it.
    case on
    /// Never: /dev/fuse only.
    case off
}

/// How ``EFSMount`` runs.
public struct MountOptions: Sendable {
    /// Stay in the foreground (otherwise the process daemonizes once the mount is in place).
    public var foreground = false
    /// Options for `-o`: `allow_other`, `ro`, … (`default_permissions` is always on).
    public var fuseOptions: [String] = []
    /// libfuse debug output (implies nothing else).
    public var debug = false
    /// Serve requests one at a time (for debugging).
    public var singleThreaded = false
    /// Most worker threads of the multithreaded loop.
    public var maximumThreads = 16
    /// Whether requests come through io_uring (FUSE over io_uring, Linux 6.14 and later, when the `fuse.enable_uring`
    /// module parameter is on) instead of read(2) and writev(2) on /dev/fuse: one request in flight per ring thread,
    /// served on the CPU that sent it, without the device's shared queue.
    public var ioURing: IOURingMode = .auto
    /// Ring threads for each CPU (each serves one request at a time; fewer past 32 CPUs, at least one). The kernel puts a
    /// request on the queue of the CPU its process runs on, readahead included: four let one sequential reader
    /// keep several backing reads going (two gave 459–822 MB/s on row 2 of `bench/mount/run.sh`, four 912–1040).
    public var ringThreadsPerCPU = 4
    /// Where one-line messages go: standard error by default.
    public var log: @Sendable (String) -> Void = { message in
        var line = "efs mount: " + message.split(separator: "\n", omittingEmptySubsequences: false).joined(separator: " ") + "\n"
        line.withUTF8 { try? Sys.writeAll(.standardError, Array($0)) }
    }

    public init() {}
}

/// Keeps the daemon's node count (one `O_PATH` descriptor each) under the descriptor limit: every 0.2 s, above 60 %
/// of the limit it asks the kernel to drop cached entries of the oldest nodes down to 40 %; the kernel then
/// forgets those that nothing holds. From its own thread, never inside a request (libfuse's rule for
/// `fuse_lowlevel_notify_inval_entry`).
final class Pruner: @unchecked Sendable {
    private let session: OpaquePointer
    private let fileSystem: EFSFileSystem
    private let high: Int
    private let low: Int
    private let running = Atomic<Bool>(true)
    private let wake = DispatchSemaphore(value: 0)
    private let done = DispatchSemaphore(value: 0)

    init(session: OpaquePointer, fileSystem: EFSFileSystem, fileLimit: UInt64) {
        self.session = session
        self.fileSystem = fileSystem
        let limit = Int(min(fileLimit, 1 << 30))
        high = max(64, limit * 6 / 10)
        low = max(32, limit * 4 / 10)
        DispatchQueue(label: "swift-efs.mount.pruner").async { [self] in self.loop() }
    }

    private func loop() {
        defer { done.signal() }
        while running.load(ordering: .relaxed) {
            _ = wake.wait(timeout: .now() + 0.2)
            fileSystem.session.releaseExpiredWrappingKeys()
            guard running.load(ordering: .relaxed), fileSystem.nodes.count > high else { continue }
            for (parent, name) in fileSystem.nodes.pruneCandidates(keeping: low) where running.load(ordering: .relaxed) {
                _ = name.withCString { fuse_lowlevel_notify_inval_entry(session, parent, $0, name.utf8.count) }
            }
        }
    }

    func stop() {
        running.store(false, ordering: .relaxed)
        wake.signal()
        done.wait()
    }
}
