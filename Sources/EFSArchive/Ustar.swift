// SPDX-License-Identifier: Apache-2.0
// This file is part of swift-efs. See LICENSE for details.

/// The ustar header block (POSIX.1-2001 `pax`, "ustar Interchange Format"; GNU tar's variant on read).
/// `Documentation/archive-format.md` §2.
///
/// ```
/// off  len  field              off  len  field
///   0  100  name               257    6  magic "ustar\0" (GNU: "ustar ")
/// 100    8  mode               263    2  version "00" (GNU: " \0")
/// 108    8  uid                265   32  uname
/// 116    8  gid                297   32  gname
/// 124   12  size               329    8  devmajor
/// 136   12  mtime              337    8  devminor
/// 148    8  chksum             345  155  prefix (POSIX only; GNU keeps other fields here)
/// 156    1  typeflag           500   12  padding
/// 157  100  linkname
/// ```
enum Ustar {
    static let blockSize = 512
    static let name = 0..<100
    static let mode = 100..<108
    static let uid = 108..<116
    static let gid = 116..<124
    static let size = 124..<136
    static let mtime = 136..<148
    static let checksum = 148..<156
    static let typeflag = 156
    static let linkname = 157..<257
    static let magic = 257..<263
    static let version = 263..<265
    static let uname = 265..<297
    static let gname = 297..<329
    static let devmajor = 329..<337
    static let devminor = 337..<345
    static let prefix = 345..<500

    static let posixMagic: [UInt8] = Array("ustar\0".utf8)
    static let posixVersion: [UInt8] = Array("00".utf8)
    /// GNU tar's magic and version, together: "ustar  \0".
    static let gnuMagicAndVersion: [UInt8] = Array("ustar  \0".utf8)

    /// Largest value of an octal field of `width` bytes with its terminating NUL.
    static func octalMaximum(width: Int) -> UInt64 { (UInt64(1) << (3 * UInt64(width - 1))) - 1 }

    /// Bytes of content padding after `size` bytes of content.
    static func padding(_ size: UInt64) -> Int { Int((UInt64(blockSize) - size % UInt64(blockSize)) % UInt64(blockSize)) }

    /// The header checksum: the unsigned sum of all bytes with the checksum field taken as spaces, and the signed
    /// sum that some historic writers used.
    static func checksums(_ block: ArraySlice<UInt8>) -> (unsigned: Int64, signed: Int64) {
        var u: Int64 = 0
        var s: Int64 = 0
        for (i, b) in block.enumerated() {
            let v = checksum.contains(i) ? UInt8(ascii: " ") : b
            u += Int64(v)
            s += Int64(Int8(bitPattern: v))
        }
        return (u, s)
    }

    // MARK: - Numbers

    /// Parses a numeric field: octal digits (leading spaces allowed, then NUL or space terminators to the end), or
    /// GNU base-256 (first byte 0x80 for positive, 0xFF for negative, the rest big-endian). An empty field (only NUL
    /// or spaces) is nil.
    static func number(_ field: ArraySlice<UInt8>, _ name: StaticString, at offset: UInt64) throws(ArchiveError) -> Int64? {
        guard let first = field.first else { return nil }
        if first & 0x80 != 0 {
            return try base256(field, name, at: offset)
        }
        var i = field.startIndex
        while i < field.endIndex, field[i] == UInt8(ascii: " ") { i += 1 }
        var value: Int64 = 0
        var digits = 0
        while i < field.endIndex, field[i] >= UInt8(ascii: "0"), field[i] <= UInt8(ascii: "7") {
            let (m, o1) = value.multipliedReportingOverflow(by: 8)
            let (a, o2) = m.addingReportingOverflow(Int64(field[i] - UInt8(ascii: "0")))
            guard !o1, !o2 else { throw ArchiveError(.badNumber, "the \(name) field overflows", at: offset) }
            value = a
            digits += 1
            i += 1
        }
        // ustar: "terminated by one or more space or NUL characters" (a full-width field needs none).
        while i < field.endIndex {
            guard field[i] == 0 || field[i] == UInt8(ascii: " ") else {
                throw ArchiveError(.badNumber, "the \(name) field is not an octal number", at: offset)
            }
            i += 1
        }
        return digits == 0 ? nil : value
    }

    private static func base256(_ field: ArraySlice<UInt8>, _ name: StaticString, at offset: UInt64) throws(ArchiveError) -> Int64 {
        let first = field[field.startIndex]
        let negative: Bool
        switch first {
        case 0x80: negative = false
        case 0xFF: negative = true
        default: throw ArchiveError(.badNumber, "the \(name) field has an unknown base-256 marker", at: offset)
        }
        var rest = field.dropFirst()
        // All but the last 8 bytes must be sign extension.
        while rest.count > 8 {
            guard rest.first == (negative ? 0xFF : 0x00) else {
                throw ArchiveError(.badNumber, "the \(name) field does not fit 64 bits", at: offset)
            }
            rest = rest.dropFirst()
        }
        var raw: UInt64 = negative ? UInt64.max : 0
        for b in rest { raw = (raw << 8) | UInt64(b) }
        let value = Int64(bitPattern: raw)
        guard negative == (value < 0) else {
            throw ArchiveError(.badNumber, "the \(name) field does not fit 64 bits", at: offset)
        }
        return value
    }

    /// GNU base-256 of a non-negative value.
    static func base256(_ value: UInt64, width: Int) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: width)
        var v = value
        for i in stride(from: width - 1, to: 0, by: -1) {
            out[i] = UInt8(truncatingIfNeeded: v)
            v >>= 8
        }
        out[0] = 0x80
        return out
    }

    // MARK: - Strings

    /// The bytes of a NUL-terminated (or full-width) text field.
    static func text(_ field: ArraySlice<UInt8>) -> ArraySlice<UInt8> {
        if let nul = field.firstIndex(of: 0) { return field[field.startIndex..<nul] }
        return field
    }
}
