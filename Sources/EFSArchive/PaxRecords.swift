// SPDX-License-Identifier: Apache-2.0
// This file is part of swift-efs. See LICENSE for details.

/// The keywords this codec reads and writes. `Documentation/archive-format.md` §3.
enum PaxKey {
    static let path = "path"
    static let linkpath = "linkpath"
    static let size = "size"
    static let uid = "uid"
    static let gid = "gid"
    static let uname = "uname"
    static let gname = "gname"
    static let mtime = "mtime"
    static let atime = "atime"
    static let ctime = "ctime"
    static let hdrcharset = "hdrcharset"
    /// star's and GNU tar's extended attribute records: `SCHILY.xattr.NAME=VALUE`, the value in raw bytes.
    static let xattrPrefix = "SCHILY.xattr."
    static let gnuSparsePrefix = "GNU.sparse."
    /// Our vendor record: the content is an EFS raw stream (MS-EFSR 2.2.3).
    static let efsRaw = "EFS.raw"
    /// Our vendor record: the raw stream is that of an encrypted directory.
    static let efsDirectory = "EFS.directory"
    /// The only header charset accepted.
    static let utf8Charset = "ISO-IEC 10646 2000 UTF-8"
}

/// pax extended header records: "%d %s=%s\n", where the decimal length counts the whole record, itself included.
enum PaxRecords {
    /// Encodes one record.
    static func encode(_ key: String, _ value: some Collection<UInt8>) -> [UInt8] {
        let body = key.utf8.count + value.count + 3  // ' ', '=', '\n'
        var length = body + 1
        while String(length).utf8.count + body != length { length = String(length).utf8.count + body }
        var out: [UInt8] = []
        out.reserveCapacity(length)
        out += Array(String(length).utf8)
        out.append(UInt8(ascii: " "))
        out += Array(key.utf8)
        out.append(UInt8(ascii: "="))
        out += value
        out.append(UInt8(ascii: "\n"))
        return out
    }

    /// Parses the content of an 'x' or 'g' header into (keyword, value) pairs, in order.
    static func parse(_ bytes: ArraySlice<UInt8>, at offset: UInt64) throws(ArchiveError) -> [(String, [UInt8])] {
        var out: [(String, [UInt8])] = []
        var rest = bytes
        while !rest.isEmpty {
            guard out.count < ArchiveLimits.maximumRecordCount else {
                throw ArchiveError(.limitExceeded, "more than \(ArchiveLimits.maximumRecordCount) pax records in one header", at: offset)
            }
            // POSIX pax: "length keyword=value\n"; length is decimal, counts the whole record.
            var length = 0
            var digits = 0
            var i = rest.startIndex
            while i < rest.endIndex, rest[i] >= UInt8(ascii: "0"), rest[i] <= UInt8(ascii: "9") {
                guard digits < 8 else {
                    throw ArchiveError(.limitExceeded, "a pax record is longer than \(ArchiveLimits.maximumRecordSize) bytes", at: offset)
                }
                length = length * 10 + Int(rest[i] - UInt8(ascii: "0"))
                digits += 1
                i += 1
            }
            guard digits > 0, i < rest.endIndex, rest[i] == UInt8(ascii: " ") else {
                throw ArchiveError(.malformed, "a pax record does not start with its decimal length", at: offset)
            }
            guard !(digits > 1 && rest[rest.startIndex] == UInt8(ascii: "0")) else {
                throw ArchiveError(.malformed, "a pax record length has leading zeros", at: offset)
            }
            guard length <= ArchiveLimits.maximumRecordSize else {
                throw ArchiveError(.limitExceeded, "a pax record of \(length) bytes is above the \(ArchiveLimits.maximumRecordSize)-byte limit", at: offset)
            }
            guard length <= rest.count else { throw ArchiveError(.malformed, "a pax record runs past its header", at: offset) }
            // Shortest record: "N k=\n" has the length digits, a space, a one-byte keyword, '=' and '\n'.
            guard length >= digits + 4 else { throw ArchiveError(.malformed, "a pax record of \(length) bytes is too short", at: offset) }
            let record = rest.prefix(length)
            guard record.last == UInt8(ascii: "\n") else {
                throw ArchiveError(.malformed, "a pax record does not end with a newline where its length says", at: offset)
            }
            let body = record[(i + 1)..<(record.endIndex - 1)]
            guard let eq = body.firstIndex(of: UInt8(ascii: "=")), eq > body.startIndex else {
                throw ArchiveError(.malformed, "a pax record has no keyword", at: offset)
            }
            let keyBytes = body[body.startIndex..<eq]
            guard !keyBytes.contains(0), let key = String(validating: keyBytes, as: UTF8.self) else {
                throw ArchiveError(.malformed, "a pax keyword is not UTF-8 text", at: offset)
            }
            out.append((key, Array(body[(eq + 1)...])))
            rest = rest.dropFirst(length)
        }
        return out
    }

    // MARK: - Values

    /// A canonical decimal: digits only, no sign, no leading zeros.
    static func decimal(_ value: [UInt8], _ key: String, maximum: UInt64, at offset: UInt64) throws(ArchiveError) -> UInt64 {
        guard !value.isEmpty, value.count <= 20, value.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }),
            !(value.count > 1 && value[0] == UInt8(ascii: "0")), let n = UInt64(String(decoding: value, as: UTF8.self))
        else { throw ArchiveError(.badNumber, "the pax '\(key)' value is not a decimal number", at: offset) }
        guard n <= maximum else { throw ArchiveError(.limitExceeded, "the pax '\(key)' value \(n) is above \(maximum)", at: offset) }
        return n
    }

    /// A pax time: `[-]SECONDS[.FRACTION]`. Digits past nanoseconds are dropped.
    static func time(_ value: [UInt8], _ key: String, at offset: UInt64) throws(ArchiveError) -> ArchiveTime {
        var v = value[...]
        let negative = v.first == UInt8(ascii: "-")
        if negative { v = v.dropFirst() }
        let intPart = v.prefix { $0 != UInt8(ascii: ".") }
        let isDigit = { (b: UInt8) in b >= UInt8(ascii: "0") && b <= UInt8(ascii: "9") }
        guard !intPart.isEmpty, intPart.count <= 18, intPart.allSatisfy(isDigit) else {
            throw ArchiveError(.badNumber, "the pax '\(key)' value is not a time", at: offset)
        }
        var fraction = v.dropFirst(intPart.count)
        var nanos: UInt32 = 0
        if !fraction.isEmpty {
            fraction = fraction.dropFirst()  // '.'
            guard !fraction.isEmpty, fraction.allSatisfy(isDigit) else {
                throw ArchiveError(.badNumber, "the pax '\(key)' value is not a time", at: offset)
            }
            var scale: UInt32 = 100_000_000
            for d in fraction.prefix(9) {
                nanos += UInt32(d - UInt8(ascii: "0")) * scale
                scale /= 10
            }
        }
        let whole = Int64(String(decoding: intPart, as: UTF8.self))!  // ≤ 18 digits: fits
        if !negative { return ArchiveTime(seconds: whole, nanoseconds: nanos) }
        if nanos == 0 { return ArchiveTime(seconds: -whole) }
        return ArchiveTime(seconds: -whole - 1, nanoseconds: 1_000_000_000 - nanos)
    }

    /// The pax text of a time.
    static func text(_ t: ArchiveTime) -> String {
        guard t.nanoseconds != 0 else { return String(t.seconds) }
        // Seconds and a positive fraction: negative times count from the whole second above.
        var seconds = t.seconds
        var nanos = t.nanoseconds
        var sign = ""
        if seconds < 0 {
            sign = "-"
            seconds = -(seconds + 1)
            nanos = 1_000_000_000 - nanos
        }
        var frac = String(nanos)
        frac = String(repeating: "0", count: 9 - frac.count) + frac
        while frac.hasSuffix("0") { frac.removeLast() }
        return "\(sign)\(seconds).\(frac)"
    }
}
