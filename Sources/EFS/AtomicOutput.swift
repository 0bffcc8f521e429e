// SPDX-License-Identifier: Apache-2.0
// This file is part of swift-efs. See LICENSE for details.

import EFSSystem
import SystemPackage

/// Creates a file atomically: a temporary name beside it (mode 0600 while it is written), then the final mode,
/// fsync, rename and a directory fsync. On failure the temporary file is removed and nothing else changes.
enum AtomicOutput {
    /// - Parameters:
    ///   - replace: replace an existing `path`; otherwise fail with ``EFSError/Code/alreadyExists``.
    ///   - durable: fsync the file and the directory (off for files the mount creates, whose durability is
    ///     ext4's: a later fsync of the file makes it durable; the rename alone keeps a process crash atomic).
    static func write<T>(
        _ path: FilePath, mode: UInt32, replace: Bool, durable: Bool = true, _ body: (FileDescriptor) throws(EFSError) -> T
    ) throws(EFSError) -> T {
        let tmp = TemporaryName.beside(path)
        let fd: FileDescriptor
        do { fd = try Sys.open(tmp, [.readWrite, .create, .exclusive], mode: [.ownerReadWrite]) } catch {
            throw EFSError.system(error, "cannot create", path)
        }
        var closed = false
        do throws(EFSError) {
            let value = try body(fd)
            try mapErrors(path, "cannot create") {
                try Sys.fchmod(fd, mode & 0o7777)
                if durable { try Sys.fsync(fd) }
                Sys.close(fd)
                closed = true
                if replace { try Sys.rename(tmp, path) } else { try Sys.renameNoReplace(tmp, path) }
            }
            if durable { FileIO.syncDirectory(path.removingLastComponent()) }
            return value
        } catch {
            // Never close twice: another thread may already own the same descriptor number.
            if !closed { Sys.close(fd) }
            try? Sys.unlink(tmp)
            throw error
        }
    }
}
