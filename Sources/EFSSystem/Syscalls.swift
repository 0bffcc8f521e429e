// SPDX-License-Identifier: Apache-2.0
// This file is part of swift-efs. See LICENSE for details.

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import Synchronization
import SystemPackage

// The only place in swift-efs that calls the C library. Every call returns `Result<_, Errno>` through
// `valueOrErrno`, retries EINTR where POSIX allows it (never for close), and passes the fault-injection seam
// (see ``FaultInjection``) for the calls that change state on disk.

@inline(__always)
func valueOrErrno<I: FixedWidthInteger>(retryOnInterrupt: Bool = true, _ f: () -> I) -> Result<I, Errno> {
    while true {
        let r = f()
        if r != -1 { return .success(r) }
        let e = Errno(rawValue: errno)
        if retryOnInterrupt && e == .interrupted { continue }
        return .failure(e)
    }
}

@inline(__always)
func nothingOrErrno<I: FixedWidthInteger>(retryOnInterrupt: Bool = true, _ f: () -> I) -> Result<Void, Errno> {
    valueOrErrno(retryOnInterrupt: retryOnInterrupt, f).map { _ in () }
}

/// The kinds of call the fault seam can stop at.
public enum FaultPoint: String, Sendable, CaseIterable {
    /// Data and names that add: write, pwrite, fallocate, hole punching, mkdir, symlink, link, mkfifo, setxattr.
    case write
    case fsync, rename, truncate
    /// Names that go away: unlink and rmdir.
    case unlink
    /// An object's mode, owner, times and removed extended attributes.
    case attributes
}

/// A crash-injection seam for tests: when `EFS_CRASH_AT=KIND:N` is set (KIND one of `write`, `fsync`, `rename`,
/// `truncate`, `unlink`, `attributes`, or `any`), the process exits with status 86 immediately before the Nth such call, as if killed.
/// `EFS_CRASH_AT=tear:N` instead lets the Nth positioned write (`pwrite`) of more than one page put down only the
/// bytes up to its first page boundary, then exits: the torn write a SIGKILL can leave, since Linux checks for fatal
/// signals between the pages of one write; `EFS_CRASH_AT=fail:N` tears that write the same way but then fails it
/// with EIO and goes on, as a disk error in the middle of a write. `EFS_CRASH_AT=busy:N` makes the Nth plain `rename` fail with EBUSY
/// without crashing, as an SMB server refuses to rename over a file that is open. Release builds ignore the variable.
public enum FaultInjection {
    public static let exitStatus: Int32 = 86

    #if DEBUG
    nonisolated(unsafe) static let target: (kind: String, n: Int)? = {
        guard let raw = getenv("EFS_CRASH_AT") else { return nil }
        let parts = String(cString: raw).split(separator: ":")
        guard parts.count == 2, let n = Int(parts[1]), n > 0 else { return nil }
        return (String(parts[0]), n)
    }()
    static let count = Atomic<Int>(0)
    static let tornCount = Atomic<Int>(0)
    static let busyCount = Atomic<Int>(0)
    #endif

    /// For the busy-rename seam: whether this `rename` is the one to fail with EBUSY.
    static func renameIsBusy() -> Bool {
        #if DEBUG
        guard let t = target, t.kind == "busy" else { return false }
        return busyCount.add(1, ordering: .relaxed).newValue == t.n
        #else
        return false
        #endif
    }

    /// For the torn-write seam: how many leading bytes of a write of `count` bytes at `offset` to put down before
    /// the crash, or nil if this write is not the one to tear. Only writes that cross a 4 KiB boundary count.
    static func tornLength(offset: Int64, count: Int) -> Int? {
        #if DEBUG
        guard let t = target, t.kind == "tear" || t.kind == "fail" else { return nil }
        let page: Int64 = 4096
        let firstBoundary = (offset / page + 1) * page
        guard firstBoundary < offset + Int64(count) else { return nil }
        let n = tornCount.add(1, ordering: .relaxed).newValue
        return n == t.n ? Int(firstBoundary - offset) : nil
        #else
        return nil
        #endif
    }

    static func exitNow() -> Never { _exit(exitStatus) }

    /// For `fail:N`: the torn write returns EIO instead of exiting, as a disk error in the middle of a write.
    static var tornWriteFails: Bool {
        #if DEBUG
        return target?.kind == "fail"
        #else
        return false
        #endif
    }

    @inline(__always)
    static func check(_ point: FaultPoint) {
        #if DEBUG
        guard let t = target, t.kind == point.rawValue || t.kind == "any" else { return }
        let n = count.add(1, ordering: .relaxed).newValue
        if n == t.n { _exit(exitStatus) }
        #endif
    }
}

extension FaultInjection {
    /// Whether crash injection is compiled in (debug builds).
    public static var isAvailable: Bool {
        #if DEBUG
        return true
        #else
        return false
        #endif
    }
}
