// SPDX-License-Identifier: Apache-2.0
// This file is part of swift-efs. See LICENSE for details.

/// A raw stream that is not in the EFS export format (`ERROR_NOT_EXPORT_FORMAT`). Equality compares codes.
public struct RawStreamError: Error, Hashable, Sendable, CustomStringConvertible {
    public enum Code: String, Sendable, Hashable {
        /// The stream ends inside a structure.
        case truncated
        /// A signature (`ROBS`, `NTFS`, `GURE`, version bytes) is wrong.
        case badSignature
        /// A length or count is above its named maximum, or arithmetic would overflow.
        case limitExceeded
        /// Structures are in an order the format forbids (a second metadata stream, a segment before any stream,
        /// data before the metadata stream, segments going backwards or overlapping).
        case badOrder
        /// A field has a value the format forbids.
        case malformed
    }

    public var code: Code
    public var message: String
    /// Byte offset in the stream where the problem was found.
    public var offset: UInt64

    public init(_ code: Code, _ message: String, at offset: UInt64) {
        self.code = code
        self.message = message
        self.offset = offset
    }

    public var description: String { "not in the EFS export format at byte \(offset): \(message)" }
    public static func == (a: RawStreamError, b: RawStreamError) -> Bool { a.code == b.code }
    public func hash(into h: inout Hasher) { h.combine(code) }
}
