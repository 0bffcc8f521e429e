// SPDX-License-Identifier: Apache-2.0
// This file is part of swift-efs. See LICENSE for details.

/// A bounds-checked little-endian cursor over untrusted bytes.
///
/// Every read either returns the requested value and advances, or throws
/// ``FormatError/Code/truncated`` without moving. Nothing here ever indexes past the end, and there is no
/// host-endian load anywhere.
///
/// ```swift
/// var reader = ByteReader(bytes)
/// let version = try reader.readUInt16()
/// ```
public struct ByteReader: Sendable {
    public private(set) var bytes: ArraySlice<UInt8>

    public init(_ bytes: ArraySlice<UInt8>) { self.bytes = bytes }
    public init(_ bytes: [UInt8]) { self.bytes = bytes[...] }

    /// The number of bytes not yet read.
    public var remaining: Int { bytes.count }
    /// The offset of the next byte relative to the start of the underlying array slice.
    public var offset: Int { bytes.startIndex }

    public mutating func readUInt8(_ field: StaticString = "byte") throws(FormatError) -> UInt8 {
        guard let b = bytes.first else { throw .truncated(field) }
        bytes = bytes.dropFirst()
        return b
    }

    public mutating func readUInt16(_ field: StaticString = "u16") throws(FormatError) -> UInt16 {
        UInt16(truncatingIfNeeded: try readLittleEndian(2, field))
    }

    public mutating func readUInt32(_ field: StaticString = "u32") throws(FormatError) -> UInt32 {
        UInt32(truncatingIfNeeded: try readLittleEndian(4, field))
    }

    public mutating func readUInt64(_ field: StaticString = "u64") throws(FormatError) -> UInt64 {
        try readLittleEndian(8, field)
    }

    /// Reads `count` bytes. `count` must already have been checked against a named maximum by the caller.
    public mutating func readBytes(_ count: Int, _ field: StaticString = "bytes") throws(FormatError) -> ArraySlice<UInt8> {
        guard count >= 0, count <= bytes.count else { throw .truncated(field) }
        let out = bytes.prefix(count)
        bytes = bytes.dropFirst(count)
        return out
    }

    public mutating func skip(_ count: Int, _ field: StaticString = "bytes") throws(FormatError) {
        _ = try readBytes(count, field)
    }

    /// Reads a length field of `width` bytes and checks it against `maximum`.
    public mutating func readLength(
        width: Int,
        maximum: Int,
        minimum: Int = 0,
        _ field: StaticString
    ) throws(FormatError) -> Int {
        let raw = try readLittleEndian(width, field)
        guard let value = Int(exactly: raw), value <= maximum else {
            throw .limitExceeded(field, value: raw, maximum: maximum)
        }
        guard value >= minimum else { throw .malformed("\(field) is \(value), below the minimum \(minimum)") }
        return value
    }

    /// Throws unless every byte has been consumed.
    public func expectEnd(_ what: StaticString) throws(FormatError) {
        guard bytes.isEmpty else { throw .trailingData(what, count: bytes.count) }
    }

    private mutating func readLittleEndian(_ width: Int, _ field: StaticString) throws(FormatError) -> UInt64 {
        guard bytes.count >= width else { throw .truncated(field) }
        var value: UInt64 = 0
        var shift: UInt64 = 0
        for b in bytes.prefix(width) {
            value |= UInt64(b) << shift
            shift += 8
        }
        bytes = bytes.dropFirst(width)
        return value
    }
}

/// Little-endian byte output.
public struct ByteWriter: Sendable {
    public private(set) var bytes: [UInt8] = []

    public init(capacity: Int = 0) { bytes.reserveCapacity(capacity) }

    public mutating func write(_ v: UInt8) { bytes.append(v) }
    public mutating func write(_ v: UInt16) { writeLittleEndian(UInt64(v), 2) }
    public mutating func write(_ v: UInt32) { writeLittleEndian(UInt64(v), 4) }
    public mutating func write(_ v: UInt64) { writeLittleEndian(v, 8) }
    public mutating func write<C: Collection>(bytes c: C) where C.Element == UInt8 { bytes.append(contentsOf: c) }
    public mutating func writeZeros(_ count: Int) { bytes.append(contentsOf: repeatElement(0, count: count)) }

    private mutating func writeLittleEndian(_ v: UInt64, _ width: Int) {
        for i in 0..<width { bytes.append(UInt8(truncatingIfNeeded: v >> (8 * UInt64(i)))) }
    }
}

extension UInt64 {
    /// Decodes 8 little-endian bytes at `offset` of `bytes`; the caller guarantees the range is valid.
    public static func littleEndian(_ bytes: some Collection<UInt8>) -> UInt64 {
        var value: UInt64 = 0
        var shift: UInt64 = 0
        for b in bytes.prefix(8) {
            value |= UInt64(b) << shift
            shift += 8
        }
        return value
    }
}
