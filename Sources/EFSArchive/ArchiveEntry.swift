// SPDX-License-Identifier: Apache-2.0
// This file is part of swift-efs. See LICENSE for details.

/// A point in time with nanoseconds, as pax `mtime`/`atime` records carry it. `nanoseconds` is always in
/// `0..<1_000_000_000`, also for times before 1970 (−1.5 s is `seconds: -2, nanoseconds: 500_000_000`).
public struct ArchiveTime: Sendable, Hashable {
    public var seconds: Int64
    public var nanoseconds: UInt32

    public init(seconds: Int64, nanoseconds: UInt32 = 0) {
        precondition(nanoseconds < 1_000_000_000, "nanoseconds out of range")
        self.seconds = seconds
        self.nanoseconds = nanoseconds
    }
}

/// One extended attribute, carried as a pax `SCHILY.xattr.NAME` record.
public struct ExtendedAttribute: Sendable, Hashable {
    public var name: String
    public var value: [UInt8]
    public init(name: String, value: [UInt8]) {
        self.name = name
        self.value = value
    }
}

/// The header of one archive member: what it is, where it goes, and its attributes. Content (`size` bytes) follows
/// the header in the archive.
///
/// ```swift
/// var entry = ArchiveEntry(kind: .regular, path: "docs/report.pdf", size: 1_234)
/// entry.mode = 0o640
/// let header = try ArchiveWriter.header(for: entry)
/// ```
public struct ArchiveEntry: Sendable, Hashable {
    public enum Kind: Sendable, Hashable {
        /// Typeflag `0` (also `\0` and `7` on read).
        case regular
        /// Typeflag `1`: ``ArchiveEntry/linkTarget`` is the path of an earlier member.
        case hardLink
        /// Typeflag `2`: ``ArchiveEntry/linkTarget`` is the link's contents.
        case symbolicLink
        /// Typeflag `3` (read only: the backup skips device nodes).
        case characterDevice
        /// Typeflag `4` (read only).
        case blockDevice
        /// Typeflag `5`.
        case directory
        /// Typeflag `6`.
        case fifo
    }

    /// What the content of an entry marked with the `EFS.raw=1` vendor record is.
    public enum EFSRaw: Sendable, Hashable {
        /// The MS-EFSR raw stream of an encrypted file; restored at ``ArchiveEntry/path``.
        case file
        /// The raw stream of an encrypted directory (`EFS.directory=1` too). The entry's path is
        /// `DIR/.efs-dir`; it is restored as the encryption of `DIR`.
        case directory
    }

    /// The last component of an encrypted directory's raw stream entry: the directory marker's name (the EFS
    /// target's `DirectoryMarker.name`).
    public static let efsDirectoryStreamName = ".efs-dir"

    public var kind: Kind
    /// The member's path, without a trailing `/` (the writer adds one to directories). Untrusted on read: the
    /// reader only checks it is non-empty UTF-8 without NUL and within ``ArchiveLimits/maximumPathLength``.
    public var path: String
    /// A symbolic link's contents, or a hard link's target member path.
    public var linkTarget: String?
    /// Content bytes that follow the header.
    public var size: UInt64
    /// Permission bits (`0o7777`).
    public var mode: UInt32
    public var uid: UInt32
    public var gid: UInt32
    public var userName: String
    public var groupName: String
    public var modificationTime: ArchiveTime
    public var accessTime: ArchiveTime?
    public var deviceMajor: UInt32
    public var deviceMinor: UInt32
    /// Extended attributes, sorted by name on read.
    public var extendedAttributes: [ExtendedAttribute]
    /// Non-nil when the content is an EFS raw stream (`EFS.raw=1`).
    public var efsRaw: EFSRaw?

    public init(
        kind: Kind, path: String, linkTarget: String? = nil, size: UInt64 = 0, mode: UInt32 = 0o644, uid: UInt32 = 0,
        gid: UInt32 = 0, userName: String = "", groupName: String = "", modificationTime: ArchiveTime = ArchiveTime(seconds: 0),
        accessTime: ArchiveTime? = nil, deviceMajor: UInt32 = 0, deviceMinor: UInt32 = 0,
        extendedAttributes: [ExtendedAttribute] = [], efsRaw: EFSRaw? = nil
    ) {
        self.kind = kind
        self.path = path
        self.linkTarget = linkTarget
        self.size = size
        self.mode = mode
        self.uid = uid
        self.gid = gid
        self.userName = userName
        self.groupName = groupName
        self.modificationTime = modificationTime
        self.accessTime = accessTime
        self.deviceMajor = deviceMajor
        self.deviceMinor = deviceMinor
        self.extendedAttributes = extendedAttributes
        self.efsRaw = efsRaw
    }
}
