// SPDX-License-Identifier: Apache-2.0
// This file is part of swift-efs. See LICENSE for details.

/// An archive that is not a well-formed pax archive, or an entry the writer cannot encode. Equality compares codes.
///
/// ```swift
/// do { _ = try reader.next() } catch { print(error.code, error.offset) }
/// ```
public struct ArchiveError: Error, Hashable, Sendable, CustomStringConvertible {
    public enum Code: String, Sendable, Hashable {
        /// The archive ends inside a header, inside an entry's content, or before its end-of-archive marker.
        case truncated
        /// A header's checksum does not match its bytes.
        case badChecksum
        /// A header is not a ustar (POSIX or GNU) header.
        case badMagic
        /// A numeric field is not octal or base-256, or does not fit.
        case badNumber
        /// A field or record has a value the format forbids.
        case malformed
        /// A length or count is above its named maximum in ``ArchiveLimits``.
        case limitExceeded
        /// A valid feature this reader does not support (sparse files, multi-volume, a binary header charset).
        case unsupported
        /// Non-zero bytes after the end-of-archive marker.
        case trailingGarbage
        /// The writer was given an entry it cannot encode (an empty path, a `=` in an attribute name, …).
        case invalidEntry
    }

    public var code: Code
    public var message: String
    /// Byte offset in the archive of the header where the problem was found.
    public var offset: UInt64

    public init(_ code: Code, _ message: String, at offset: UInt64 = 0) {
        self.code = code
        self.message = message
        self.offset = offset
    }

    public var description: String { "malformed archive at byte \(offset): \(message)" }
    public static func == (a: ArchiveError, b: ArchiveError) -> Bool { a.code == b.code }
    public func hash(into h: inout Hasher) { h.combine(code) }
}
