// SPDX-License-Identifier: Apache-2.0
// This file is part of swift-efs. See LICENSE for details.

import EFSSystem
import SystemPackage

/// Small whole-file helpers on top of ``Sys``.
enum FileIO {
    /// Reads a whole file of at most `maximum` bytes.
    static func read(_ path: FilePath, maximum: Int) throws(EFSError) -> [UInt8] {
        try mapErrors(path, "cannot read") {
            let fd = try Sys.open(path, .readOnly)
            defer { Sys.close(fd) }
            let st = try Sys.fstat(fd)
            guard st.kind == .regular else { throw EFSError(.invalidArgument, "\(path): not a regular file") }
            guard st.size <= Int64(maximum) else {
                throw EFSError(.corrupt, "\(path): file is larger than the \(maximum)-byte limit")
            }
            // Read what fstat says plus one byte (to see growth past it), not `maximum` bytes: the limit can be
            // megabytes (a recovery policy), and zeroing that much per call showed up in the mount's creates.
            let bytes = try Sys.pread(fd, count: Int(st.size) + 1, at: 0)
            guard bytes.count <= maximum else { throw EFSError(.corrupt, "\(path): file is larger than the \(maximum)-byte limit") }
            return bytes
        }
    }

    /// Replaces `path` atomically: writes a temporary file beside it, fsyncs, renames, fsyncs the directory.
    static func writeAtomically(_ path: FilePath, _ bytes: [UInt8], mode: UInt32) throws(EFSError) {
        let tmp = TemporaryName.beside(path)
        let fd: FileDescriptor
        do {
            fd = try Sys.open(tmp, [.writeOnly, .create, .exclusive], mode: FilePermissions(rawValue: CModeT(mode)))
        } catch {
            throw EFSError.system(error, "cannot write", path)
        }
        var closed = false
        do {
            try Sys.fchmod(fd, mode)
            try Sys.pwriteAll(fd, bytes, at: 0)
            try Sys.fsync(fd)
            Sys.close(fd)
            closed = true
            try Sys.rename(tmp, path)
        } catch {
            // Never close twice: another thread may already own the same descriptor number.
            if !closed { Sys.close(fd) }
            try? Sys.unlink(tmp)
            throw EFSError.system(error, "cannot write", path)
        }
        syncDirectory(path.removingLastComponent())
    }

    /// fsyncs a directory so a rename in it is durable. Errors are ignored: some file systems refuse it.
    static func syncDirectory(_ dir: FilePath) {
        let d = dir.isEmpty ? FilePath(".") : dir
        guard let fd = try? Sys.open(d, .directory) else { return }
        try? Sys.fsync(fd)
        Sys.close(fd)
    }

    static func exists(_ path: FilePath) -> Bool { (try? Sys.lstat(path)) != nil }
}

/// Names of temporary files. They all contain ``marker`` so that `efs fsck --repair` can find litter left by a
/// crash, and the mount hides them.
public enum TemporaryName {
    public static let marker = ".efs-tmp-"

    static func beside(_ path: FilePath) -> FilePath {
        let dir = path.removingLastComponent()
        return (dir.isEmpty ? FilePath(".") : dir).appending(name(for: path.lastComponent?.string ?? "file"))
    }

    /// A fresh temporary name for `name` in the same directory: `.NAME.efs-tmp-RANDOM`, kept under NAME_MAX
    /// (255 bytes) whatever the script by cutting NAME at a character boundary after 200 bytes.
    package static func name(for name: String) -> String {
        var g = SystemRandomNumberGenerator()
        let suffix = String(UInt64.random(in: 0...UInt64.max, using: &g), radix: 36)
        var short = name
        if name.utf8.count > 200 {
            short = ""
            var bytes = 0
            for ch in name {
                bytes += ch.utf8.count
                if bytes > 200 { break }
                short.append(ch)
            }
        }
        return ".\(short)\(marker)\(suffix)"
    }

    /// Whether a directory entry name is a temporary file of ours.
    public static func isTemporary(_ name: String) -> Bool { name.contains(marker) }
}
