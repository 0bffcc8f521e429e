// SPDX-License-Identifier: Apache-2.0
// This file is part of swift-efs. See LICENSE for details.

import EFSArchive
import EFSCore
import EFSSystem
import SystemPackage

/// Backup, restore and verification of whole trees, in the spirit of `robocopy /EFSRAW` and ntbackup: a POSIX pax
/// archive in which encrypted files and directories travel as their MS-EFSR raw streams (no key is used, and the
/// archive never holds their plaintext) and everything else as it is. `Documentation/archive-format.md`.
///
/// - A plain file, directory, symbolic link, hard link or FIFO is an ordinary pax entry, with its mode, owner,
///   times and extended attributes (`SCHILY.xattr.NAME` records).
/// - An encrypted file is a regular entry marked `EFS.raw=1` whose content is the file's raw stream.
/// - An encrypted directory is its directory entry, followed at once by a regular entry `DIR/.efs-dir` marked
///   `EFS.raw=1` and `EFS.directory=1` whose content is the directory's raw stream (the marker's metadata and named
///   streams). Restoring it makes `DIR` encrypted again.
/// - Directory markers and swift-efs temporary files are never archived; a volume's `.efs` configuration
///   directory is (as plain files: it holds only certificates).
///
/// `tar -tvf` lists such an archive; plain `tar -x` would extract raw streams as files.
///
/// ```swift
/// let out = try FileDescriptor.open("/backup/vault.tar", .writeOnly, options: [.create, .truncate], permissions: .ownerReadWrite)
/// let summary = try EFSBackup.backup(["vault"], to: out, options: .init(relativeTo: "/data"))
/// let report = try EFSBackup.verify(from: try FileDescriptor.open("/backup/vault.tar", .readOnly))
/// let restored = try EFSBackup.restore(from: try FileDescriptor.open("/backup/vault.tar", .readOnly), into: "/restore")
/// ```
public enum EFSBackup {
    /// How far a backup, restore or verification has got. Reported after each entry and during long content.
    public struct Progress: Sendable {
        /// Entries done (files, directories, links…).
        public var entries: Int
        /// Archive bytes written or read.
        public var bytes: UInt64
        /// The entry being worked on, as named in the archive.
        public var path: String
    }

    /// A problem with one entry. The operation goes on with the others.
    public struct Issue: Sendable, CustomStringConvertible {
        /// The entry, as named in the archive.
        public var path: String
        public var error: EFSError
        /// A warning (something left out or not restored exactly) rather than a failed entry.
        public var isWarning: Bool

        public var description: String {
            error.message.hasPrefix("/") || error.message.contains(path) ? error.message : "\(path): \(error.message)"
        }
    }

    /// Options of ``backup(_:to:options:issues:progress:)``.
    public struct Options: Sendable {
        /// Sources that are relative paths are found below this directory (as `tar -C DIR`), and archived under
        /// their names as given.
        public var relativeTo: FilePath?
        public init(relativeTo: FilePath? = nil) { self.relativeTo = relativeTo }
    }

    /// What a backup, restore or verification did.
    public struct Summary: Sendable {
        /// Entries written, restored or checked.
        public var entries = 0
        /// Of those, EFS raw streams (encrypted files and directories).
        public var rawStreams = 0
        /// Archive bytes written or read.
        public var bytes: UInt64 = 0
        /// Entries that failed (not archived, not restored, or malformed).
        public var failures = 0
        public var warnings = 0
        /// The last failure, for the exit status of a command line tool.
        public var lastFailure: EFSError?
    }

    // MARK: - Backup

    /// Writes a pax archive of `sources` to `output`, walking each like tar: directories recursively in name order,
    /// symbolic links not followed, without crossing into other file systems. Memory stays bounded whatever the file
    /// sizes: content is streamed.
    ///
    /// Archive names are the sources as given, without a leading `/` and without `.` components; a source with a
    /// `..` component is refused. A source or entry that cannot be read is reported to `issues` and left out.
    ///
    /// - Parameters:
    ///   - sources: files or directories.
    ///   - output: where the archive goes (a file, a pipe, standard output).
    ///   - issues: called for each entry left out (a failure) or archived imperfectly (a warning).
    ///   - progress: called after each entry and during long content.
    /// - Returns: counts, with ``Summary/failures`` for entries left out.
    /// - Throws: when the archive itself cannot be written completely (an output error, or an encrypted file that
    ///   changed size under its lock); the output then holds a partial archive.
    @discardableResult
    public static func backup(
        _ sources: [FilePath], to output: FileDescriptor, options: Options = Options(),
        issues: (Issue) -> Void = { _ in }, progress: (Progress) -> Void = { _ in }
    ) throws(EFSError) -> Summary {
        try withoutActuallyEscaping(issues) { (issues) throws(EFSError) -> Summary in
            try withoutActuallyEscaping(progress) { (progress) throws(EFSError) -> Summary in
                var walker = BackupWalker(output: ArchiveOutput(output), issues: issues, progress: progress)
                if let st = try? Sys.fstat(output), st.kind == .regular { walker.archiveIdentity = FileKey(st) }
                for source in sources {
                    let name: String
                    do throws(EFSError) { name = try archiveName(of: source) } catch {
                        walker.report(source.string, error, warning: false)
                        continue
                    }
                    let path = source.isAbsolute ? source : (options.relativeTo.map { $0.pushing(source) } ?? source)
                    try walker.archive(path: path, name: name)
                }
                try walker.out.write(ArchiveWriter.endOfArchive)
                try walker.out.flush()
                walker.summary.bytes = walker.out.count
                return walker.summary
            }
        }
    }

    /// The archive name of a source: its components without the root and `.`; `.` for the root itself.
    static func archiveName(of source: FilePath) throws(EFSError) -> String {
        var parts: [String] = []
        for c in source.components {
            let s = c.string
            if s == "." { continue }
            if s == ".." { throw EFSError(.invalidArgument, "\(source): refusing a source with a '..' component (give -C DIR instead)") }
            parts.append(s)
        }
        return parts.isEmpty ? "." : parts.joined(separator: "/")
    }
}

/// A file's identity: device and inode.
struct FileKey: Hashable {
    var device: UInt64
    var inode: UInt64
    init(_ st: FileStatus) {
        device = st.device
        inode = st.inode
    }
}

extension ArchiveTime {
    init(seconds: Int, nanoseconds: Int) {
        self.init(seconds: Int64(seconds), nanoseconds: UInt32(clamping: max(0, min(999_999_999, nanoseconds))))
    }
}

extension FileStatus {
    var archiveModificationTime: ArchiveTime { ArchiveTime(seconds: modificationTime.tv_sec, nanoseconds: modificationTime.tv_nsec) }
    var archiveAccessTime: ArchiveTime { ArchiveTime(seconds: accessTime.tv_sec, nanoseconds: accessTime.tv_nsec) }
}

extension Sys {
    static func time(_ t: ArchiveTime) -> Sys.TimeSpec { time(seconds: t.seconds, nanoseconds: t.nanoseconds) }
}
