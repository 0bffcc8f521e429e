// SPDX-License-Identifier: Apache-2.0
// This file is part of swift-efs. See LICENSE for details.

import EFSArchive

/// An archive of `members` (header, content, padding) and the end marker.
func archive(_ members: [(ArchiveEntry, [UInt8])], end: Bool = true) throws -> [UInt8] {
    var out: [UInt8] = []
    for (e, content) in members {
        out += try ArchiveWriter.header(for: e)
        out += content
        out += ArchiveWriter.padding(afterContentOfSize: UInt64(content.count))
    }
    if end { out += ArchiveWriter.endOfArchive }
    return out
}

/// Reads every member of `bytes`, fed `chunk` bytes at a time (0: all at once), or split once at `split`.
func readAll(_ bytes: [UInt8], chunk: Int = 0, split: Int? = nil) throws(ArchiveError) -> [(ArchiveEntry, [UInt8])] {
    var r = ArchiveReader()
    var pieces: [ArraySlice<UInt8>] = []
    if let split {
        pieces = [bytes[0..<split], bytes[split...]]
    } else if chunk == 0 {
        pieces = [bytes[...]]
    } else {
        var i = 0
        while i < bytes.count {
            pieces.append(bytes[i..<min(bytes.count, i + chunk)])
            i += chunk
        }
    }
    var next = 0
    func feed() -> Bool {
        guard next < pieces.count else { return false }
        r.append(pieces[next])
        next += 1
        return true
    }
    var out: [(ArchiveEntry, [UInt8])] = []
    var current: (ArchiveEntry, [UInt8])?
    while true {
        if var c = current {
            if r.contentRemaining > 0 {
                let part = r.readContent(maximum: 1 << 20)
                if part.isEmpty {
                    if !feed() { break }
                    continue
                }
                c.1 += part
                current = c
                continue
            }
            out.append(c)
            current = nil
        }
        if let e = try r.next() {
            current = (e, [])
            continue
        }
        if !feed() { break }
    }
    if let c = current, r.contentRemaining == 0 { out.append(c) }
    try r.finish()
    return out
}

/// Hand-made ustar blocks, built independently of the writer, for hostile inputs.
enum Block {
    static func octal(_ v: UInt64, _ digits: Int) -> [UInt8] {
        let s = Array(String(v, radix: 8).utf8)
        return [UInt8](repeating: UInt8(ascii: "0"), count: max(0, digits - s.count)) + s
    }

    static func put(_ b: inout [UInt8], _ at: Int, _ bytes: [UInt8]) {
        for (i, x) in bytes.enumerated() { b[at + i] = x }
    }

    /// A POSIX ustar header. `edit` runs before the checksum is computed.
    static func make(
        _ name: String, type: Character = "0", size: UInt64 = 0, gnu: Bool = false, checksum: Bool = true,
        edit: (inout [UInt8]) -> Void = { _ in }
    ) -> [UInt8] {
        var b = [UInt8](repeating: 0, count: 512)
        put(&b, 0, Array(name.utf8))
        put(&b, 100, Array("0000644".utf8) + [0])
        put(&b, 108, Array("0001750".utf8) + [0])
        put(&b, 116, Array("0001750".utf8) + [0])
        put(&b, 124, octal(size, 11) + [0])
        put(&b, 136, octal(1_700_000_000, 11) + [0])
        b[156] = type.asciiValue!
        put(&b, 257, gnu ? Array("ustar  ".utf8) + [0] : Array("ustar".utf8) + [0] + Array("00".utf8))
        edit(&b)
        if checksum { seal(&b) }
        return b
    }

    static func seal(_ b: inout [UInt8]) {
        for i in 148..<156 { b[i] = 0x20 }
        let sum = b.reduce(0) { $0 + UInt64($1) }
        put(&b, 148, octal(sum, 6) + [0, 0x20])
    }

    /// One pax record, "LEN key=value\n".
    static func record(_ key: String, _ value: [UInt8]) -> [UInt8] {
        let body = key.utf8.count + value.count + 3
        var n = body + 1
        while String(n).count + body != n { n = String(n).count + body }
        return Array("\(n) \(key)=".utf8) + value + [0x0A]
    }

    static func record(_ key: String, _ value: String) -> [UInt8] { record(key, Array(value.utf8)) }

    /// A metadata header ('x', 'g', 'L', 'K') with its content and padding.
    static func meta(_ type: Character, _ content: [UInt8]) -> [UInt8] {
        make("PaxHeaders/x", type: type, size: UInt64(content.count)) + content + pad(content.count)
    }

    static func pad(_ n: Int) -> [UInt8] { [UInt8](repeating: 0, count: (512 - n % 512) % 512) }

    static let end = [UInt8](repeating: 0, count: 1024)
}
