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
        let (value, fd) = try writeKeepingOpen(path, mode: mode, replace: replace, durable: durable, body)
        Sys.close(fd)
        return value
    }

    /// The same as ``write(_:mode:replace:durable:_:)``, but the descriptor `body` wrote through (open for reading
    /// and writing) stays open and is returned with `body`'s value, now reaching the file under its final name. The
    /// caller closes it. Anything `body` set on it (an OFD lock, say) holds from before the file has that name.
    static func writeKeepingOpen<T>(
        _ path: FilePath, mode: UInt32, replace: Bool, durable: Bool = true, _ body: (FileDescriptor) throws(EFSError) -> T
    ) throws(EFSError) -> (T, FileDescriptor) {
        let tmp = TemporaryName.beside(path)
        let fd: FileDescriptor
        do { fd = try Sys.open(tmp, [.readWrite, .create, .exclusive], mode: [.ownerReadWrite]) } catch {
            throw EFSError.system(error, "cannot create", path)
        }
        do throws(EFSError) {
            let value = try body(fd)
            try mapErrors(path, "cannot create") {
                try Sys.fchmod(fd, mode & 0o7777)
                if durable { try Sys.fsync(fd) }
                if replace { try Sys.rename(tmp, path) } else { try Sys.renameNoReplace(tmp, path) }
            }
            if durable { FileIO.syncDirectory(path.removingLastComponent()) }
            return (value, fd)
        } catch {
            Sys.close(fd)
            try? Sys.unlink(tmp)
            throw error
        }
    }
}
