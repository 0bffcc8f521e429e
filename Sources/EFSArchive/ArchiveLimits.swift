// SPDX-License-Identifier: Apache-2.0
// This file is part of swift-efs. See LICENSE for details.

/// Named maximums of the archive reader and writer. Hostile input can never make memory or time grow beyond these;
/// the writer refuses anything the reader would refuse. `Documentation/archive-format.md` §5.
public enum ArchiveLimits {
    /// Longest path or link target, in UTF-8 bytes (Linux `PATH_MAX`, with its terminating NUL left out).
    public static let maximumPathLength = 4_095
    /// Longest user or group name, in UTF-8 bytes.
    public static let maximumNameLength = 255
    /// Largest pax extended header ('x' or 'g') or GNU long-name ('L', 'K') content. The reader buffers one whole
    /// extended header, so this bounds its memory.
    public static let maximumExtendedHeaderSize = 4 * 1_048_576
    /// Most records in one pax extended header, and most global ('g') records kept at once.
    public static let maximumRecordCount = 4_096
    /// Largest single pax record ("LEN KEY=VALUE\n"), all of it.
    public static let maximumRecordSize = 65_536 + 4_096
    /// Most extended attributes (`SCHILY.xattr.NAME` records) on one entry.
    public static let maximumExtendedAttributeCount = 1_024
    /// Longest extended attribute name, in bytes (Linux `XATTR_NAME_MAX`).
    public static let maximumExtendedAttributeNameLength = 255
    /// Largest extended attribute value (Linux `XATTR_SIZE_MAX`).
    public static let maximumExtendedAttributeValueSize = 65_536
    /// Largest entry content: offsets must fit `Int64`, with room for any raw stream framing.
    public static let maximumEntrySize: UInt64 = 1 << 62
    /// Most metadata headers ('x', 'g', 'L', 'K') in a row before the entry they describe.
    public static let maximumMetadataHeadersPerEntry = 8
}
