// SPDX-License-Identifier: Apache-2.0
// This file is part of swift-efs. See LICENSE for details.

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import CEFSSystem
import SystemPackage

/// What `stat` says about a file, in Swift types.
public struct FileStatus: Sendable, Hashable {
    public enum Kind: Sendable, Hashable { case regular, directory, symlink, other }
    public var kind: Kind
    public var permissions: FilePermissions
    public var mode: UInt32
    public var uid: UInt32
    public var gid: UInt32
    public var size: Int64
    public var linkCount: UInt64
    public var inode: UInt64
    public var device: UInt64
    public var accessTime: timespec
    public var modificationTime: timespec
    public var changeTime: timespec
    /// The device a special file stands for (`st_rdev`).
    public var rawDevice: UInt64
    /// Allocated 512-byte blocks (`st_blocks`).
    public var blocks: Int64
    /// The preferred I/O size (`st_blksize`).
    public var blockSize: Int64

    init(_ s: stat) {
        switch s.st_mode & S_IFMT {
        case S_IFREG: kind = .regular
        case S_IFDIR: kind = .directory
        case S_IFLNK: kind = .symlink
        default: kind = .other
        }
        mode = s.st_mode
        permissions = FilePermissions(rawValue: CModeT(s.st_mode & 0o7777))
        uid = s.st_uid
        gid = s.st_gid
        size = Int64(s.st_size)
        linkCount = UInt64(s.st_nlink)
        inode = UInt64(s.st_ino)
        device = UInt64(s.st_dev)
        accessTime = s.st_atim
        modificationTime = s.st_mtim
        changeTime = s.st_ctim
        rawDevice = UInt64(s.st_rdev)
        blocks = Int64(s.st_blocks)
        blockSize = Int64(s.st_blksize)
    }

    public static func == (a: FileStatus, b: FileStatus) -> Bool {
        a.inode == b.inode && a.device == b.device && a.mode == b.mode && a.size == b.size
    }
    public func hash(into h: inout Hasher) { h.combine(inode); h.combine(device) }
}

/// One directory entry.
public struct DirectoryEntry: Sendable, Hashable {
    public var name: String
    public var isDirectory: Bool
}

/// Flags for ``Sys/open(_:_:mode:)``. `O_CLOEXEC` is always added.
public struct OpenFlags: OptionSet, Sendable {
    public let rawValue: Int32
    public init(rawValue: Int32) { self.rawValue = rawValue }
    public static let readOnly = OpenFlags([])
    public static let writeOnly = OpenFlags(rawValue: O_WRONLY)
    public static let readWrite = OpenFlags(rawValue: O_RDWR)
    public static let create = OpenFlags(rawValue: O_CREAT)
    public static let exclusive = OpenFlags(rawValue: O_EXCL)
    public static let truncate = OpenFlags(rawValue: O_TRUNC)
    public static let append = OpenFlags(rawValue: O_APPEND)
    public static let directory = OpenFlags(rawValue: O_DIRECTORY)
    public static let noFollow = OpenFlags(rawValue: O_NOFOLLOW)
    public static let nonBlocking = OpenFlags(rawValue: O_NONBLOCK)
}

/// Thin, typed wrappers over the system calls swift-efs needs. Every function throws `Errno`.
public enum Sys {
    // MARK: - Opening and closing

    public static func open(_ path: FilePath, _ flags: OpenFlags, mode: FilePermissions = [.ownerReadWrite]) throws(Errno) -> FileDescriptor {
        let fd = try path.withPlatformString { p in valueOrErrno { Glibc.open(p, flags.rawValue | O_CLOEXEC, mode.rawValue) } }.get()
        return FileDescriptor(rawValue: fd)
    }

    public static func openat(_ dir: FileDescriptor, _ name: String, _ flags: OpenFlags, mode: FilePermissions = [.ownerReadWrite]) throws(Errno) -> FileDescriptor {
        let fd = try valueOrErrno { Glibc.openat(dir.rawValue, name, flags.rawValue | O_CLOEXEC, mode.rawValue) }.get()
        return FileDescriptor(rawValue: fd)
    }

    /// Closes `fd`. Never retried: after EINTR the descriptor is already gone on Linux.
    public static func close(_ fd: FileDescriptor) {
        _ = Glibc.close(fd.rawValue)
    }

    // MARK: - Data

    /// Reads up to `count` bytes at `offset`, stopping early only at end of file.
    public static func pread(_ fd: FileDescriptor, count: Int, at offset: Int64) throws(Errno) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: count)
        let n = try preadInto(fd, &out, at: offset)
        if n < count { out.removeSubrange(n...) }
        return out
    }

    /// Reads into `buffer` at `offset`, returning bytes read (less than the buffer only at end of file).
    public static func preadInto(_ fd: FileDescriptor, _ buffer: inout [UInt8], at offset: Int64) throws(Errno) -> Int {
        let result = buffer.withUnsafeMutableBytes { raw in Result { () throws(Errno) in try preadInto(fd, raw, at: offset) } }
        return try result.get()
    }

    /// Reads into `buffer` at `offset`, returning bytes read (less than the buffer only at end of file).
    public static func preadInto(_ fd: FileDescriptor, _ buffer: UnsafeMutableRawBufferPointer, at offset: Int64) throws(Errno) -> Int {
        var done = 0
        while done < buffer.count {
            // Invariant: `done < buffer.count`, so the pointer stays inside `buffer`.
            let n = try valueOrErrno { Glibc.pread(fd.rawValue, buffer.baseAddress! + done, buffer.count - done, off_t(offset) + off_t(done)) }.get()
            if n == 0 { break }
            done += n
        }
        return done
    }

    /// Writes all of `bytes` at `offset`.
    public static func pwriteAll(_ fd: FileDescriptor, _ bytes: some ContiguousCollection<UInt8>, at offset: Int64) throws(Errno) {
        try bytes.withUnsafeBytesCompat { raw throws(Errno) in try pwriteAll(fd, from: raw, at: offset) }
    }

    /// Reads up to `count` bytes from the current position (pipes, terminals).
    public static func read(_ fd: FileDescriptor, count: Int) throws(Errno) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: count)
        let n = try out.withUnsafeMutableBytes { raw in valueOrErrno { Glibc.read(fd.rawValue, raw.baseAddress!, count) } }.get()
        out.removeSubrange(n...)
        return out
    }

    /// Writes all of `bytes` at the current position (pipes, standard output).
    public static func writeAll(_ fd: FileDescriptor, _ bytes: some ContiguousCollection<UInt8>) throws(Errno) {
        FaultInjection.check(.write)
        var done = 0
        let count = bytes.count
        while done < count {
            let n = try bytes.withUnsafeBytesCompat { raw in
                valueOrErrno { Glibc.write(fd.rawValue, raw.baseAddress! + done, count - done) }
            }.get()
            done += n
        }
    }

    public static func fsync(_ fd: FileDescriptor) throws(Errno) {
        FaultInjection.check(.fsync)
        try nothingOrErrno { Glibc.fsync(fd.rawValue) }.get()
    }

    public static func fdatasync(_ fd: FileDescriptor) throws(Errno) {
        FaultInjection.check(.fsync)
        try nothingOrErrno { Glibc.fdatasync(fd.rawValue) }.get()
    }

    /// Starts writeback of a range without waiting (`sync_file_range(SYNC_FILE_RANGE_WRITE)`), so a later fsync has
    /// less to do. Best effort: errors (e.g. on file systems without it) are ignored.
    public static func startWriteback(_ fd: FileDescriptor, offset: Int64, length: Int64) {
        _ = cefs_sync_file_range_write(fd.rawValue, off_t(offset), off_t(length))
    }

    /// Flushes the whole file system that holds `fd` (`syncfs`).
    public static func syncFileSystem(_ fd: FileDescriptor) throws(Errno) {
        FaultInjection.check(.fsync)
        try nothingOrErrno { cefs_syncfs(fd.rawValue) }.get()
    }

    public static func ftruncate(_ fd: FileDescriptor, _ length: Int64) throws(Errno) {
        FaultInjection.check(.truncate)
        try nothingOrErrno { Glibc.ftruncate(fd.rawValue, off_t(length)) }.get()
    }

    /// The offset of the first byte at or after `offset` that is not in a hole (`lseek(SEEK_DATA)`), or nil when
    /// only holes follow. File systems without hole tracking report everything as data.
    public static func nextData(_ fd: FileDescriptor, from offset: Int64) throws(Errno) -> Int64? {
        let SEEK_DATA_: Int32 = 3
        switch valueOrErrno({ Glibc.lseek(fd.rawValue, off_t(offset), SEEK_DATA_) }) {
        case .success(let o): return Int64(o)
        case .failure(let e) where e.rawValue == ENXIO: return nil
        case .failure(let e) where e == .invalidArgument: return offset  // no SEEK_DATA support: all data
        case .failure(let e): throw e
        }
    }

    /// `fallocate(2)` with `mode` as given.
    public static func fallocate(_ fd: FileDescriptor, mode: Int32, offset: Int64, length: Int64) throws(Errno) {
        FaultInjection.check(.write)
        try nothingOrErrno { cefs_fallocate(fd.rawValue, mode, off_t(offset), off_t(length)) }.get()
    }

    /// Punches a hole (keeps the size). Returns false where the file system cannot.
    public static func punchHole(_ fd: FileDescriptor, offset: Int64, length: Int64) -> Bool {
        FaultInjection.check(.write)
        let FALLOC_FL_KEEP_SIZE: Int32 = 0x01
        let FALLOC_FL_PUNCH_HOLE: Int32 = 0x02
        return cefs_fallocate(fd.rawValue, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, off_t(offset), off_t(length)) == 0
    }

    // MARK: - Metadata

    public static func fstat(_ fd: FileDescriptor) throws(Errno) -> FileStatus {
        var s = Glibc.stat()
        try nothingOrErrno { cefs_fstat(fd.rawValue, &s) }.get()
        return FileStatus(s)
    }

    public static func stat(_ path: FilePath) throws(Errno) -> FileStatus {
        var s = Glibc.stat()
        try path.withPlatformString { p in nothingOrErrno { cefs_stat(p, &s) } }.get()
        return FileStatus(s)
    }

    public static func lstat(_ path: FilePath) throws(Errno) -> FileStatus {
        var s = Glibc.stat()
        try path.withPlatformString { p in nothingOrErrno { cefs_lstat(p, &s) } }.get()
        return FileStatus(s)
    }

    public static func fchmod(_ fd: FileDescriptor, _ mode: UInt32) throws(Errno) {
        FaultInjection.check(.attributes)
        try nothingOrErrno { Glibc.fchmod(fd.rawValue, mode_t(mode)) }.get()
    }

    public static func fchown(_ fd: FileDescriptor, uid: UInt32, gid: UInt32) throws(Errno) {
        FaultInjection.check(.attributes)
        try nothingOrErrno { Glibc.fchown(fd.rawValue, uid, gid) }.get()
    }

    public static func futimens(_ fd: FileDescriptor, access: timespec, modification: timespec) throws(Errno) {
        FaultInjection.check(.attributes)
        var times = [access, modification]
        try nothingOrErrno { Glibc.futimens(fd.rawValue, &times) }.get()
    }

    /// Whether the calling process may write `path` (real uid, like `access(2)`).
    public static func isWritable(_ path: FilePath) -> Bool {
        path.withPlatformString { Glibc.access($0, W_OK) == 0 }
    }

    // MARK: - Names

    public static func rename(_ from: FilePath, _ to: FilePath) throws(Errno) {
        FaultInjection.check(.rename)
        if FaultInjection.renameIsBusy() { throw .resourceBusy }
        try from.withPlatformString { f in to.withPlatformString { t in nothingOrErrno { Glibc.rename(f, t) } } }.get()
    }

    /// `renameat2(RENAME_NOREPLACE)`: fails with EEXIST if `to` exists. Falls back to link+unlink where the file
    /// system lacks renameat2 (some network file systems).
    public static func renameNoReplace(_ from: FilePath, _ to: FilePath) throws(Errno) {
        FaultInjection.check(.rename)
        let RENAME_NOREPLACE: UInt32 = 1
        let r = from.withPlatformString { f in
            to.withPlatformString { t in
                nothingOrErrno { cefs_renameat2(f, t, RENAME_NOREPLACE) }
            }
        }
        switch r {
        case .success: return
        case .failure(let e) where e == .invalidArgument || e == .noFunction:
            try from.withPlatformString { f in to.withPlatformString { t in nothingOrErrno { Glibc.link(f, t) } } }.get()
            try unlink(from)
        case .failure(let e): throw e
        }
    }

    /// `link(2)`: a new name for the file at `from` (not following a symbolic link, as on Linux).
    public static func link(_ from: FilePath, _ to: FilePath) throws(Errno) {
        FaultInjection.check(.write)
        try from.withPlatformString { f in to.withPlatformString { t in nothingOrErrno { Glibc.link(f, t) } } }.get()
    }

    public static func unlink(_ path: FilePath) throws(Errno) {
        FaultInjection.check(.unlink)
        try path.withPlatformString { p in nothingOrErrno { Glibc.unlink(p) } }.get()
    }

    public static func mkdir(_ path: FilePath, mode: UInt32 = 0o755) throws(Errno) {
        FaultInjection.check(.write)
        try path.withPlatformString { p in nothingOrErrno { Glibc.mkdir(p, mode_t(mode)) } }.get()
    }

    public static func rmdir(_ path: FilePath) throws(Errno) {
        FaultInjection.check(.unlink)
        try path.withPlatformString { p in nothingOrErrno { Glibc.rmdir(p) } }.get()
    }

    public static func chmod(_ path: FilePath, _ mode: UInt32) throws(Errno) {
        FaultInjection.check(.attributes)
        try path.withPlatformString { p in nothingOrErrno { Glibc.chmod(p, mode_t(mode)) } }.get()
    }

    /// Lists a directory, without `.` and `..`, sorted by name.
    public static func listDirectory(_ path: FilePath) throws(Errno) -> [DirectoryEntry] {
        guard let dir = path.withPlatformString({ Glibc.opendir($0) }) else { throw Errno(rawValue: errno) }
        defer { Glibc.closedir(dir) }
        var out: [DirectoryEntry] = []
        while true {
            errno = 0
            guard let ent = Glibc.readdir(dir) else {
                if errno != 0 { throw Errno(rawValue: errno) }
                break
            }
            let name = withUnsafePointer(to: ent.pointee.d_name) { p in
                p.withMemoryRebound(to: CChar.self, capacity: 256) { String(cString: $0) }
            }
            if name == "." || name == ".." { continue }
            var isDir = ent.pointee.d_type == UInt8(DT_DIR)
            if ent.pointee.d_type == UInt8(DT_UNKNOWN) {
                isDir = (try? lstat(path.appending(name)))?.kind == .directory
            }
            out.append(DirectoryEntry(name: name, isDirectory: isDir))
        }
        return out.sorted { $0.name < $1.name }
    }

    public static func realpath(_ path: FilePath) throws(Errno) -> FilePath {
        guard let r = path.withPlatformString({ Glibc.realpath($0, nil) }) else { throw Errno(rawValue: errno) }
        defer { free(r) }
        return FilePath(String(cString: r))
    }

    // MARK: - Locks

    /// Takes a whole-file exclusive open-file-description lock without waiting. Returns false if another open file
    /// description holds a conflicting lock. OFD locks are POSIX byte-range locks, which NFS (NLM/NFSv4) and SMB
    /// mounts carry to the server.
    public static func tryLockExclusive(_ fd: FileDescriptor) throws(Errno) -> Bool {
        try tryLock(fd, type: Int16(F_WRLCK))
    }

    /// Takes a shared lock; false if an exclusive lock is held elsewhere.
    public static func tryLockShared(_ fd: FileDescriptor) throws(Errno) -> Bool {
        try tryLock(fd, type: Int16(F_RDLCK))
    }

    /// Tries for about 50 ms before reporting a conflict. An OFD lock belongs to the open file description, which a
    /// child of any thread of this process shares between its fork and its exec (our descriptors are close-on-exec,
    /// so only for that moment): a file closed here just before another thread spawns a process can still look
    /// locked for a few microseconds. A real holder (a mount, a raw export) keeps its lock far longer.
    static func tryLock(_ fd: FileDescriptor, type: Int16) throws(Errno) -> Bool {
        var fl = flock()
        fl.l_type = type
        fl.l_whence = Int16(SEEK_SET)
        fl.l_start = 0
        fl.l_len = 0
        for attempt in 0..<11 {
            switch valueOrErrno({ cefs_ofd_setlk(fd.rawValue, &fl) }) {
            case .success: return true
            case .failure(let e) where e == .resourceTemporarilyUnavailable || e == .permissionDenied:
                if attempt < 10 {
                    var ts = timespec(tv_sec: 0, tv_nsec: 5_000_000)
                    _ = nanosleep(&ts, nil)
                }
            case .failure(let e): throw e
            }
        }
        return false
    }

    // MARK: - Extended attributes

    /// Lists extended attribute names of an open file.
    public static func listXattrs(_ fd: FileDescriptor) throws(Errno) -> [String] {
        while true {
            let size = try valueOrErrno { cefs_flistxattr(fd.rawValue, nil, 0) }.get()
            if size == 0 { return [] }
            var buf = [CChar](repeating: 0, count: size)
            let r = valueOrErrno { cefs_flistxattr(fd.rawValue, &buf, size) }
            switch r {
            case .failure(let e) where e == .outOfRange: continue
            case .failure(let e): throw e
            case .success(let n):
                return buf[0..<n].split(separator: 0).map { String(decoding: $0.map { UInt8(bitPattern: $0) }, as: UTF8.self) }
            }
        }
    }

    public static func getXattr(_ fd: FileDescriptor, _ name: String) throws(Errno) -> [UInt8] {
        try readXattr { cefs_fgetxattr(fd.rawValue, name, $0, $1) }
    }

    /// An extended attribute of the object at `path`, following symbolic links (getxattr(2)). On a
    /// `/proc/self/fd/N` path this reads the attribute of what descriptor N (an `O_PATH` one too) refers to, in one
    /// system call instead of an open, an fgetxattr and a close.
    public static func getXattr(path: FilePath, _ name: String) throws(Errno) -> [UInt8] {
        try path.withPlatformString { p in Result { () throws(Errno) in try readXattr { cefs_getxattr(p, name, $0, $1) } } }.get()
    }

    /// Runs a getxattr-style `call(buffer, size)`: the size first, then the value, again if it grew meanwhile.
    private static func readXattr(_ call: (UnsafeMutableRawPointer?, Int) -> Int) throws(Errno) -> [UInt8] {
        while true {
            let size = try valueOrErrno { call(nil, 0) }.get()
            if size == 0 { return [] }
            var buf = [UInt8](repeating: 0, count: size)
            let r = valueOrErrno { buf.withUnsafeMutableBytes { call($0.baseAddress, size) } }
            switch r {
            case .failure(let e) where e == .outOfRange: continue
            case .failure(let e): throw e
            case .success(let n): return Array(buf[0..<n])
            }
        }
    }

    public static func setXattr(_ fd: FileDescriptor, _ name: String, _ value: [UInt8]) throws(Errno) {
        FaultInjection.check(.write)
        try nothingOrErrno { cefs_fsetxattr(fd.rawValue, name, value, value.count, 0) }.get()
    }

    public static func removeXattr(_ fd: FileDescriptor, _ name: String) throws(Errno) {
        FaultInjection.check(.attributes)
        try nothingOrErrno { cefs_fremovexattr(fd.rawValue, name) }.get()
    }

    // MARK: - Process

    public static func environment(_ name: String) -> String? {
        guard let v = getenv(name) else { return nil }
        return String(cString: v)
    }

    public static var effectiveUserID: UInt32 { geteuid() }

    /// Online processors.
    public static var processorCount: Int { max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))) }
    public static var effectiveGroupID: UInt32 { getegid() }

    /// The login name of the effective user, from the password database, else `$USER`, else "uid N".
    public static func userName() -> String {
        if let pw = getpwuid(geteuid()), let n = pw.pointee.pw_name { return String(cString: n) }
        return environment("USER") ?? "uid \(geteuid())"
    }

    /// The home directory of the effective user.
    public static func homeDirectory() -> String {
        if let h = environment("HOME"), !h.isEmpty { return h }
        if let pw = getpwuid(geteuid()), let d = pw.pointee.pw_dir { return String(cString: d) }
        return "/"
    }

    public static func isTerminal(_ fd: FileDescriptor) -> Bool { isatty(fd.rawValue) == 1 }

    public static func setUmask(_ mask: UInt32) -> UInt32 { UInt32(umask(mode_t(mask))) }

    /// The process umask, read from `/proc/self/status` (`Umask:` line) so that no other thread ever sees a
    /// changed umask; 0o022 if it cannot be read.
    public static func currentUmask() -> UInt32 {
        guard let fd = try? open(FilePath("/proc/self/status"), .readOnly) else { return 0o022 }
        defer { close(fd) }
        guard let bytes = try? pread(fd, count: 8192, at: 0) else { return 0o022 }
        for line in String(decoding: bytes, as: UTF8.self).split(separator: "\n") where line.hasPrefix("Umask:") {
            if let v = UInt32(line.dropFirst(6).trimmingPrefix(while: { $0 == " " || $0 == "\t" }), radix: 8) { return v }
        }
        return 0o022
    }

    /// Whether another open file description holds a lock on `fd`'s file that conflicts with an exclusive lock.
    public static func isLockedElsewhere(_ fd: FileDescriptor) throws(Errno) -> Bool {
        var fl = flock()
        fl.l_type = Int16(F_WRLCK)
        fl.l_whence = Int16(SEEK_SET)
        fl.l_start = 0
        fl.l_len = 0
        try nothingOrErrno { cefs_ofd_getlk(fd.rawValue, &fl) }.get()
        return fl.l_type != Int16(F_UNLCK)
    }

    /// Releases this descriptor's OFD lock.
    public static func unlock(_ fd: FileDescriptor) {
        var fl = flock()
        fl.l_type = Int16(F_UNLCK)
        fl.l_whence = Int16(SEEK_SET)
        _ = cefs_ofd_setlk(fd.rawValue, &fl)
    }

    /// Prompts on the controlling terminal and reads a line with echo off. Returns nil if there is no terminal.
    public static func readSecretFromTerminal(prompt: String) -> [UInt8]? {
        let tty = Glibc.open("/dev/tty", O_RDWR | O_CLOEXEC)
        guard tty >= 0 else { return nil }
        defer { Glibc.close(tty) }
        var old = termios()
        guard tcgetattr(tty, &old) == 0 else { return nil }
        var quiet = old
        quiet.c_lflag &= ~tcflag_t(ECHO)
        _ = Array(prompt.utf8).withUnsafeBytes { Glibc.write(tty, $0.baseAddress, $0.count) }
        _ = tcsetattr(tty, TCSAFLUSH, &quiet)
        defer {
            _ = tcsetattr(tty, TCSAFLUSH, &old)
            _ = Glibc.write(tty, "\n", 1)
        }
        var line: [UInt8] = []
        var c: UInt8 = 0
        while Glibc.read(tty, &c, 1) == 1 {
            if c == 0x0A || c == 0x0D { break }
            line.append(c)
            if line.count > 4096 { break }
        }
        return line
    }

    /// Fills a buffer with zeros in a way the optimiser does not remove.
    public static func secureZero(_ bytes: inout [UInt8]) {
        bytes.withUnsafeMutableBytes { raw in
            if let base = raw.baseAddress { cefs_explicit_bzero(base, raw.count) }
        }
    }
}


/// A contiguous byte collection that can lend its bytes (Array, ArraySlice).
public protocol ContiguousCollection<Element>: Collection {
    func withUnsafeBytesCompat<R, E: Error>(_ body: (UnsafeRawBufferPointer) throws(E) -> R) throws(E) -> R
}

extension Array: ContiguousCollection where Element == UInt8 {
    public func withUnsafeBytesCompat<R, E: Error>(_ body: (UnsafeRawBufferPointer) throws(E) -> R) throws(E) -> R {
        let r: Result<R, E> = withUnsafeBytes { raw in
            do throws(E) { return .success(try body(raw)) } catch { return .failure(error) }
        }
        return try r.get()
    }
}

extension ArraySlice: ContiguousCollection where Element == UInt8 {
    public func withUnsafeBytesCompat<R, E: Error>(_ body: (UnsafeRawBufferPointer) throws(E) -> R) throws(E) -> R {
        let r: Result<R, E> = withUnsafeBytes { raw in
            do throws(E) { return .success(try body(raw)) } catch { return .failure(error) }
        }
        return try r.get()
    }
}

// MARK: - Directory-relative calls (efs backup / restore)

extension FileStatus {
    /// A named pipe (`S_IFIFO`).
    public var isFIFO: Bool { mode & 0o170000 == 0o010000 }
}

extension Sys {
    /// `fstatat(dir, name, AT_SYMLINK_NOFOLLOW)`: like `lstat`, relative to an open directory.
    public static func lstatat(_ dir: FileDescriptor, _ name: String) throws(Errno) -> FileStatus {
        var s = Glibc.stat()
        try nothingOrErrno { Glibc.fstatat(dir.rawValue, name, &s, AT_SYMLINK_NOFOLLOW) }.get()
        return FileStatus(s)
    }

    public static func mkdirat(_ dir: FileDescriptor, _ name: String, mode: UInt32) throws(Errno) {
        FaultInjection.check(.write)
        try nothingOrErrno { Glibc.mkdirat(dir.rawValue, name, mode_t(mode)) }.get()
    }

    /// Creates a symbolic link `name` in `dir` whose contents are `target` (never resolved here).
    public static func symlinkat(_ target: String, _ dir: FileDescriptor, _ name: String) throws(Errno) {
        FaultInjection.check(.write)
        try nothingOrErrno { Glibc.symlinkat(target, dir.rawValue, name) }.get()
    }

    /// Creates the hard link `toName` in `toDir` to `fromName` in `fromDir`, without following a symbolic link.
    public static func linkat(_ fromDir: FileDescriptor, _ fromName: String, _ toDir: FileDescriptor, _ toName: String) throws(Errno) {
        FaultInjection.check(.write)
        try nothingOrErrno { Glibc.linkat(fromDir.rawValue, fromName, toDir.rawValue, toName, 0) }.get()
    }

    /// Creates a named pipe (`mkfifoat`).
    public static func mkfifoat(_ dir: FileDescriptor, _ name: String, mode: UInt32) throws(Errno) {
        FaultInjection.check(.write)
        try nothingOrErrno { Glibc.mkfifoat(dir.rawValue, name, mode_t(mode)) }.get()
    }

    /// Removes `name` from `dir`: a directory (empty) when `directory`, else any other kind of entry.
    public static func unlinkat(_ dir: FileDescriptor, _ name: String, directory: Bool = false) throws(Errno) {
        FaultInjection.check(.unlink)
        try nothingOrErrno { Glibc.unlinkat(dir.rawValue, name, directory ? AT_REMOVEDIR : 0) }.get()
    }

    public static func renameat(_ fromDir: FileDescriptor, _ from: String, _ toDir: FileDescriptor, _ to: String) throws(Errno) {
        FaultInjection.check(.rename)
        try nothingOrErrno { Glibc.renameat(fromDir.rawValue, from, toDir.rawValue, to) }.get()
    }

    /// The contents of a symbolic link (at most `PATH_MAX` bytes), as bytes.
    public static func readlink(_ path: FilePath) throws(Errno) -> [UInt8] {
        var buf = [UInt8](repeating: 0, count: Int(PATH_MAX) + 1)
        let n = try path.withPlatformString { p in
            buf.withUnsafeMutableBytes { raw in
                // Invariant: `raw` holds PATH_MAX + 1 bytes; readlink writes at most raw.count and never a NUL.
                valueOrErrno { Glibc.readlink(p, raw.baseAddress!.assumingMemoryBound(to: CChar.self), raw.count) }
            }
        }.get()
        guard n <= Int(PATH_MAX) else { throw Errno.fileNameTooLong }
        return Array(buf[0..<n])
    }

    /// Changes the owner of `name` in `dir`, without following a symbolic link (`AT_SYMLINK_NOFOLLOW`).
    public static func lchownat(_ dir: FileDescriptor, _ name: String, uid: UInt32, gid: UInt32) throws(Errno) {
        FaultInjection.check(.attributes)
        try nothingOrErrno { Glibc.fchownat(dir.rawValue, name, uid, gid, AT_SYMLINK_NOFOLLOW) }.get()
    }

    /// Sets the access and modification times of `name` in `dir`, without following a symbolic link.
    public static func lutimensat(_ dir: FileDescriptor, _ name: String, access: timespec, modification: timespec) throws(Errno) {
        FaultInjection.check(.attributes)
        var times = [access, modification]
        try nothingOrErrno { Glibc.utimensat(dir.rawValue, name, &times, AT_SYMLINK_NOFOLLOW) }.get()
    }

    /// The login name of `uid` in the password database, or nil.
    public static func userName(forUserID uid: UInt32) -> String? {
        var pw = passwd()
        var result: UnsafeMutablePointer<passwd>?
        var buf = [CChar](repeating: 0, count: 16_384)
        let r = buf.withUnsafeMutableBufferPointer { b in getpwuid_r(uid, &pw, b.baseAddress!, b.count, &result) }
        guard r == 0, result != nil, let name = pw.pw_name else { return nil }
        return String(cString: name)
    }

    /// The name of group `gid` in the group database, or nil.
    public static func groupName(forGroupID gid: UInt32) -> String? {
        var gr = group()
        var result: UnsafeMutablePointer<group>?
        var buf = [CChar](repeating: 0, count: 16_384)
        let r = buf.withUnsafeMutableBufferPointer { b in getgrgid_r(gid, &gr, b.baseAddress!, b.count, &result) }
        guard r == 0, result != nil, let name = gr.gr_name else { return nil }
        return String(cString: name)
    }
}

extension Sys {
    /// The C `timespec`, named for modules that do not import the C library.
    public typealias TimeSpec = timespec

    /// A `timespec` of `seconds` and `nanoseconds`, for modules that do not import the C library.
    public static func time(seconds: Int64, nanoseconds: UInt32) -> timespec {
        timespec(tv_sec: Int(seconds), tv_nsec: Int(nanoseconds))
    }
}

// MARK: - Descriptor-relative calls (the FUSE mount)

/// Flags of ``Sys/renameat2(_:_:_:_:flags:)``.
public struct RenameFlags: OptionSet, Sendable {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    /// Fail with EEXIST if the target exists. The corresponding C constant is `RENAME_NOREPLACE`.
    public static let noReplace = RenameFlags(rawValue: 1)
    /// Swap the two names atomically. The corresponding C constant is `RENAME_EXCHANGE`.
    public static let exchange = RenameFlags(rawValue: 2)
    /// Leave a whiteout (a 0/0 character device, as overlayfs uses) at the old name. The corresponding C constant
    /// is `RENAME_WHITEOUT`.
    public static let whiteout = RenameFlags(rawValue: 4)
}

/// One entry of ``Sys/readDirectory(_:)``: the name, the inode number and the `d_type` kind.
public struct DirectoryRecord: Sendable {
    public var name: String
    public var inode: UInt64
    /// The `DT_*` value (`DT_UNKNOWN` where the file system does not fill it).
    public var type: UInt8
}

/// What `statvfs` says about a file system.
public struct FileSystemStatistics: Sendable {
    public var blockSize: UInt64
    public var fragmentSize: UInt64
    public var blocks: UInt64
    public var freeBlocks: UInt64
    public var availableBlocks: UInt64
    public var files: UInt64
    public var freeFiles: UInt64
    public var availableFiles: UInt64
    public var maximumNameLength: UInt64
}

extension OpenFlags {
    /// A handle that names an object without opening it for I/O. The corresponding C constant is `O_PATH`
    /// (the Glibc module hides it behind `_GNU_SOURCE`; this is its Linux value).
    public static let pathOnly = OpenFlags(rawValue: 0o10_000_000)
    /// Reads through this descriptor leave the access time alone (only the owner, or a holder of `CAP_FOWNER`,
    /// may ask; others get EPERM). The corresponding C constant is `O_NOATIME` (Linux value; `_GNU_SOURCE`).
    public static let noAccessTime = OpenFlags(rawValue: 0o1_000_000)
}

extension Sys {
    /// `AT_EMPTY_PATH`: operate on the descriptor itself (Linux value; hidden behind `_GNU_SOURCE`).
    static let atEmptyPath: Int32 = 0x1000
    /// A `timespec` that means "now" in ``utimens(_:access:modification:)``. C: `UTIME_NOW`.
    public static let timeNow = timespec(tv_sec: 0, tv_nsec: (1 << 30) - 1)
    /// A `timespec` that means "leave unchanged" in ``utimens(_:access:modification:)``. C: `UTIME_OMIT`.
    public static let timeOmit = timespec(tv_sec: 0, tv_nsec: (1 << 30) - 2)

    /// `fstatat(dir, name)`, following a final symbolic link when `followSymlinks`.
    public static func statAt(_ dir: FileDescriptor, _ name: String, followSymlinks: Bool) throws(Errno) -> FileStatus {
        var s = Glibc.stat()
        try nothingOrErrno { Glibc.fstatat(dir.rawValue, name, &s, followSymlinks ? 0 : AT_SYMLINK_NOFOLLOW) }.get()
        return FileStatus(s)
    }

    /// `renameat2(RENAME_NOREPLACE)` within or between open directories: fails with EEXIST if `to` exists. Falls
    /// back to `linkat` + `unlinkat` where the file system lacks renameat2 (some network file systems), as
    /// ``renameNoReplace(_:_:)`` does.
    public static func renameNoReplaceAt(_ fromDir: FileDescriptor, _ from: String, _ toDir: FileDescriptor, _ to: String) throws(Errno) {
        FaultInjection.check(.rename)
        switch nothingOrErrno({ cefs_renameat2_at(fromDir.rawValue, from, toDir.rawValue, to, RenameFlags.noReplace.rawValue) }) {
        case .success: return
        case .failure(let e) where e == .invalidArgument || e == .noFunction:
            try nothingOrErrno { Glibc.linkat(fromDir.rawValue, from, toDir.rawValue, to, 0) }.get()
            try unlinkat(fromDir, from)
        case .failure(let e): throw e
        }
    }

    /// Whether the calling process may create and remove entries in the open directory `dir` (real uid, like
    /// `access(2)`), checked on the descriptor so that no path is resolved again.
    public static func isWritableDirectory(_ dir: FileDescriptor) -> Bool {
        Glibc.faccessat(dir.rawValue, ".", W_OK, 0) == 0
    }

    /// `renameat2(2)` between two directories, with `RENAME_NOREPLACE` or `RENAME_EXCHANGE`.
    public static func renameat2(_ fromDir: FileDescriptor, _ from: String, _ toDir: FileDescriptor, _ to: String, flags: RenameFlags) throws(Errno) {
        FaultInjection.check(.rename)
        try nothingOrErrno { cefs_renameat2_at(fromDir.rawValue, from, toDir.rawValue, to, flags.rawValue) }.get()
    }

    /// Creates `toName` in `toDir` as a new hard link to whatever `path` resolves to, following symbolic links
    /// (so `/proc/self/fd/N` links the object the descriptor names).
    public static func linkFollowing(_ path: FilePath, _ toDir: FileDescriptor, _ toName: String) throws(Errno) {
        FaultInjection.check(.write)
        try path.withPlatformString { p in
            nothingOrErrno { Glibc.linkat(AT_FDCWD, p, toDir.rawValue, toName, AT_SYMLINK_FOLLOW) }
        }.get()
    }

    /// The contents of the symbolic link `name` in `dir` (`""` with an `O_PATH` handle of the link itself).
    public static func readlinkat(_ dir: FileDescriptor, _ name: String) throws(Errno) -> [UInt8] {
        var buf = [UInt8](repeating: 0, count: Int(PATH_MAX) + 1)
        let n = try buf.withUnsafeMutableBytes { raw in
            // Invariant: `raw` holds PATH_MAX + 1 bytes; readlinkat writes at most raw.count and never a NUL.
            valueOrErrno { Glibc.readlinkat(dir.rawValue, name, raw.baseAddress!.assumingMemoryBound(to: CChar.self), raw.count) }
        }.get()
        guard n <= Int(PATH_MAX) else { throw Errno.fileNameTooLong }
        return Array(buf[0..<n])
    }

    /// Changes the owner of the object an `O_PATH` (or any) handle names, without following a symbolic link.
    /// `UInt32.max` leaves that id unchanged.
    public static func chownHandle(_ fd: FileDescriptor, uid: UInt32, gid: UInt32) throws(Errno) {
        FaultInjection.check(.attributes)
        try nothingOrErrno { Glibc.fchownat(fd.rawValue, "", uid, gid, atEmptyPath | AT_SYMLINK_NOFOLLOW) }.get()
    }

    /// Sets the access and modification times of what `path` resolves to. ``timeNow`` and ``timeOmit`` are honoured.
    public static func utimens(_ path: FilePath, access: timespec, modification: timespec) throws(Errno) {
        FaultInjection.check(.attributes)
        var times = [access, modification]
        try path.withPlatformString { p in nothingOrErrno { Glibc.utimensat(AT_FDCWD, p, &times, 0) } }.get()
    }

    /// `mknodat(2)`: a device node, FIFO or socket (`mode` carries the `S_IF*` kind).
    public static func mknodat(_ dir: FileDescriptor, _ name: String, mode: UInt32, device: UInt64) throws(Errno) {
        FaultInjection.check(.write)
        try nothingOrErrno { Glibc.mknodat(dir.rawValue, name, mode_t(mode), dev_t(device)) }.get()
    }

    /// `fstatvfs(2)` of the file system holding `fd` (an `O_PATH` handle works).
    public static func fileSystemStatistics(_ fd: FileDescriptor) throws(Errno) -> FileSystemStatistics {
        var s = Glibc.statvfs()
        try nothingOrErrno { Glibc.fstatvfs(fd.rawValue, &s) }.get()
        return FileSystemStatistics(
            blockSize: UInt64(s.f_bsize), fragmentSize: UInt64(s.f_frsize), blocks: UInt64(s.f_blocks),
            freeBlocks: UInt64(s.f_bfree), availableBlocks: UInt64(s.f_bavail), files: UInt64(s.f_files),
            freeFiles: UInt64(s.f_ffree), availableFiles: UInt64(s.f_favail), maximumNameLength: UInt64(s.f_namemax))
    }

    /// Every entry of the directory `dir` names (an `O_PATH` handle works), `.` and `..` included, in directory
    /// order.
    public static func readDirectory(_ dir: FileDescriptor) throws(Errno) -> [DirectoryRecord] {
        let fd = try valueOrErrno { Glibc.openat(dir.rawValue, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC) }.get()
        guard let d = Glibc.fdopendir(fd) else {
            let e = Errno(rawValue: errno)
            _ = Glibc.close(fd)
            throw e
        }
        defer { Glibc.closedir(d) }
        var out: [DirectoryRecord] = []
        while true {
            errno = 0
            guard let ent = Glibc.readdir(d) else {
                if errno != 0 { throw Errno(rawValue: errno) }
                return out
            }
            let name = withUnsafePointer(to: ent.pointee.d_name) { p in
                p.withMemoryRebound(to: CChar.self, capacity: 256) { String(cString: $0) }
            }
            out.append(DirectoryRecord(name: name, inode: UInt64(ent.pointee.d_ino), type: ent.pointee.d_type))
        }
    }

    /// One `pread(2)` into `buffer`; returns the bytes read (0 at end of file).
    public static func pread(_ fd: FileDescriptor, into buffer: UnsafeMutableRawBufferPointer, at offset: Int64) throws(Errno) -> Int {
        guard let base = buffer.baseAddress, buffer.count > 0 else { return 0 }
        return try valueOrErrno { Glibc.pread(fd.rawValue, base, buffer.count, off_t(offset)) }.get()
    }

    /// Writes all of `buffer` at `offset` (on an `O_APPEND` descriptor, at the end, as `pwrite(2)` does on Linux).
    public static func pwriteAll(_ fd: FileDescriptor, from buffer: UnsafeRawBufferPointer, at offset: Int64) throws(Errno) {
        FaultInjection.check(.write)
        guard let base = buffer.baseAddress else { return }
        if let keep = FaultInjection.tornLength(offset: offset, count: buffer.count) {
            // The torn-write seam: what a SIGKILL between two pages of one write(2) leaves, then the "kill".
            _ = Glibc.pwrite(fd.rawValue, base, keep, off_t(offset))
            if FaultInjection.tornWriteFails { throw .ioError }
            FaultInjection.exitNow()
        }
        var done = 0
        while done < buffer.count {
            // Invariant: `done < buffer.count`, so the pointer stays inside `buffer`.
            done += try valueOrErrno { Glibc.pwrite(fd.rawValue, base + done, buffer.count - done, off_t(offset) + off_t(done)) }.get()
        }
    }

    /// `mmap(MAP_SHARED, PROT_READ|PROT_WRITE)` of the first `length` bytes of `fd`.
    public static func mapShared(_ fd: FileDescriptor, length: Int) throws(Errno) -> UnsafeMutableRawBufferPointer {
        guard let p = Glibc.mmap(nil, length, PROT_READ | PROT_WRITE, MAP_SHARED, fd.rawValue, 0), p != MAP_FAILED else {
            throw Errno(rawValue: Glibc.errno)
        }
        return UnsafeMutableRawBufferPointer(start: p, count: length)
    }

    /// `msync(MS_SYNC)` then `munmap` of a mapping from ``mapShared(_:length:)``.
    public static func unmap(_ mapping: UnsafeMutableRawBufferPointer, sync: Bool = true) throws(Errno) {
        guard let base = mapping.baseAddress else { return }
        if sync { try nothingOrErrno { Glibc.msync(base, mapping.count, MS_SYNC) }.get() }
        try nothingOrErrno { Glibc.munmap(base, mapping.count) }.get()
    }

    /// Raises the soft limit on open descriptors as far as allowed (the hard limit, or more for root, up to
    /// `wanted`), for daemons that hold one descriptor per object a client has in use. Returns the new soft limit.
    @discardableResult
    public static func raiseOpenFileLimit(to wanted: UInt64 = 1 << 20) -> UInt64 {
        var r = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &r) == 0 else { return 0 }
        var want = rlimit(rlim_cur: rlim_t(wanted), rlim_max: max(r.rlim_max, rlim_t(wanted)))
        if setrlimit(Int32(RLIMIT_NOFILE.rawValue), &want) == 0 { return UInt64(want.rlim_cur) }
        want = rlimit(rlim_cur: r.rlim_max, rlim_max: r.rlim_max)
        if setrlimit(Int32(RLIMIT_NOFILE.rawValue), &want) == 0 { return UInt64(want.rlim_cur) }
        return UInt64(r.rlim_cur)
    }

    /// `truncate(2)`: sets the length of the file `path` names.
    public static func truncate(_ path: FilePath, _ length: Int64) throws(Errno) {
        FaultInjection.check(.truncate)
        try path.withPlatformString { p in nothingOrErrno { Glibc.truncate(p, off_t(length)) } }.get()
    }

    /// Sets extended attribute `name` with `XATTR_CREATE` (1) or `XATTR_REPLACE` (2) semantics in `flags`.
    public static func setXattr(_ fd: FileDescriptor, _ name: String, _ value: [UInt8], flags: Int32) throws(Errno) {
        FaultInjection.check(.write)
        try nothingOrErrno { cefs_fsetxattr(fd.rawValue, name, value, value.count, flags) }.get()
    }

    /// Keeps the process's secrets (unlocked private keys, FEKs, passphrases) out of swap, core dumps and other
    /// processes of the same user: `prctl(PR_SET_DUMPABLE, 0)`, then `mlockall(MCL_CURRENT | MCL_FUTURE |
    /// MCL_ONFAULT)` when the memory-lock limit cannot make later allocations fail (no limit, or root).
    ///
    /// - Returns: nil when both took effect, else what did not, for a one-line warning.
    public static func protectSecretsInMemory() -> String? {
        var missing: [String] = []
        if cefs_set_not_dumpable() != 0 { missing.append("cannot disable core dumps (\(Errno(rawValue: errno)))") }
        if cefs_lock_all_memory() != 0 {
            let e = Errno(rawValue: errno)
            missing.append(e == .notPermitted
                ? "memory not locked (RLIMIT_MEMLOCK is limited; 'ulimit -l unlimited' or root allows it), so unlocked keys could reach swap"
                : "memory not locked (\(e)), so unlocked keys could reach swap")
        }
        return missing.isEmpty ? nil : missing.joined(separator: "; ")
    }

}
