// SPDX-License-Identifier: Apache-2.0
// This file is part of swift-efs. See LICENSE for details.

import EFSArchive
import EFSSystem
import SystemPackage

extension EFSBackup {
    /// Restores a pax archive below `destination` (created if missing, one level).
    ///
    /// Encrypted files and directories are imported from their raw streams with ``RawContext`` (no key is used);
    /// everything else is created as archived. Modes, times and extended attributes are restored, and owners when
    /// running as root (numeric ids, as `tar --numeric-owner`). Directories get their modes and times after their
    /// children. Device nodes are skipped with a warning.
    ///
    /// Entries never land outside `destination`: absolute paths and `..` components are refused, and no symbolic
    /// link is followed on the way to an entry (so an archive cannot plant a link and then write through it). A
    /// hard link's target obeys the same rules.
    ///
    /// An entry that fails is reported to `issues` and the restore goes on with the next, as tar does; the summary
    /// counts the failures. A file whose entry fails (a malformed raw stream, a truncated archive) leaves no file
    /// and no temporary file behind.
    ///
    /// - Throws: ``EFSError/Code/corrupt`` when the archive itself is malformed or truncated (entries restored
    ///   before that stay), or an error opening `destination`.
    @discardableResult
    public static func restore(
        from input: FileDescriptor, into destination: FilePath,
        issues: (Issue) -> Void = { _ in }, progress: (Progress) -> Void = { _ in }
    ) throws(EFSError) -> Summary {
        if (try? Sys.lstat(destination)) == nil {
            do { try Sys.mkdir(destination, mode: 0o777) } catch where error != .fileExists {
                throw EFSError.system(error, "cannot create the destination", destination)
            } catch {}
        }
        let real = try mapErrors(destination, "cannot open the destination") { try Sys.realpath(destination) }
        let root: FileDescriptor
        do { root = try Sys.open(real, [.readOnly, .directory]) } catch {
            throw EFSError.system(error, "cannot open the destination", destination)
        }
        defer { Sys.close(root) }
        return try withoutActuallyEscaping(issues) { (issues) throws(EFSError) -> Summary in
            try withoutActuallyEscaping(progress) { (progress) throws(EFSError) -> Summary in
                let restorer = Restorer(input: ArchiveInput(input), root: root, rootPath: real, issues: issues, progress: progress)
                // One flush of the whole file system instead of two fsyncs per restored object — also when the
                // archive turns out bad halfway: what was restored stays, and must be durable.
                let summary: Summary
                do throws(EFSError) { summary = try restorer.run() } catch {
                    try? Sys.syncFileSystem(root)
                    throw error
                }
                do throws(Errno) { try Sys.syncFileSystem(root) } catch { throw EFSError.system(error, "cannot flush the restored files", destination) }
                return summary
            }
        }
    }
}
