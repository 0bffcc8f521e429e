// SPDX-License-Identifier: Apache-2.0
// This file is part of swift-efs. See LICENSE for details.

/// Encodes pax archive headers. Pure: the caller writes each header, then exactly `entry.size` content bytes, then
/// ``padding(afterContentOfSize:)``, and at the end ``endOfArchive``.
///
/// Values that do not fit the ustar fields (long or non-ASCII paths, link targets and names, sizes of 8 GiB and
/// more, large ids, times before 1970 or with nanoseconds), extended attributes and the `EFS.raw` vendor record go
/// into a pax extended header ('x') written before the ustar header, so that any pax reader, `tar -tvf` included,
/// lists the entry. `Documentation/archive-format.md`.
///
/// ```swift
/// try out.write(ArchiveWriter.header(for: entry))
/// try out.write(content)
/// try out.write(ArchiveWriter.padding(afterContentOfSize: entry.size))
/// try out.write(ArchiveWriter.endOfArchive)
/// ```
public enum ArchiveWriter {
    /// Two zero blocks: the end-of-archive marker.
    public static let endOfArchive = [UInt8](repeating: 0, count: 2 * Ustar.blockSize)
    public static let blockSize = Ustar.blockSize

    /// Zero bytes that bring content of `size` bytes to a whole number of 512-byte blocks.
    public static func padding(afterContentOfSize size: UInt64) -> [UInt8] {
        [UInt8](repeating: 0, count: Ustar.padding(size))
    }

    /// The header blocks of `entry`: a pax extended header when needed, then the ustar header.
    ///
    /// - Throws: ``ArchiveError/Code/invalidEntry`` or ``ArchiveError/Code/limitExceeded`` for an entry the reader
    ///   would refuse (so the writer never produces an archive this codec cannot read back).
    public static func header(for entry: ArchiveEntry) throws(ArchiveError) -> [UInt8] {
        try validate(entry)
        var records: [UInt8] = []
        var block = [UInt8](repeating: 0, count: Ustar.blockSize)

        // Path: name, or prefix + "/" + name, in ASCII; otherwise a pax 'path' record.
        let fullPath = entry.kind == .directory && !entry.path.hasSuffix("/") ? entry.path + "/" : entry.path
        let pathBytes = Array(fullPath.utf8)
        if let (prefix, name) = splitUstarPath(pathBytes) {
            put(&block, Ustar.name, name)
            put(&block, Ustar.prefix, prefix)
        } else {
            records += PaxRecords.encode(PaxKey.path, pathBytes)
            put(&block, Ustar.name, asciiPrefix(fullPath, 100))
        }
        if let target = entry.linkTarget, entry.kind == .symbolicLink || entry.kind == .hardLink {
            let bytes = Array(target.utf8)
            if bytes.count <= 100, isPortable(bytes) {
                put(&block, Ustar.linkname, bytes)
            } else {
                records += PaxRecords.encode(PaxKey.linkpath, bytes)
                put(&block, Ustar.linkname, asciiPrefix(target, 100))
            }
        }
        putOctal(&block, Ustar.mode, UInt64(entry.mode & 0o7777))
        for (value, range, key) in [(entry.uid, Ustar.uid, PaxKey.uid), (entry.gid, Ustar.gid, PaxKey.gid)] {
            if !putOctal(&block, range, UInt64(value)) {
                records += PaxRecords.encode(key, Array(String(value).utf8))
                putOctal(&block, range, 0)
            }
        }
        if !putOctal(&block, Ustar.size, entry.size) {
            records += PaxRecords.encode(PaxKey.size, Array(String(entry.size).utf8))
            put(&block, Ustar.size, Ustar.base256(entry.size, width: 12))
        }
        let mtime = entry.modificationTime
        if mtime.seconds >= 0, putOctal(&block, Ustar.mtime, UInt64(mtime.seconds)) {
            if mtime.nanoseconds != 0 { records += PaxRecords.encode(PaxKey.mtime, Array(PaxRecords.text(mtime).utf8)) }
        } else {
            putOctal(&block, Ustar.mtime, 0)
            records += PaxRecords.encode(PaxKey.mtime, Array(PaxRecords.text(mtime).utf8))
        }
        if let atime = entry.accessTime { records += PaxRecords.encode(PaxKey.atime, Array(PaxRecords.text(atime).utf8)) }
        block[Ustar.typeflag] = typeflag(entry.kind)
        put(&block, Ustar.magic, Ustar.posixMagic)
        put(&block, Ustar.version, Ustar.posixVersion)
        for (name, range, key) in [(entry.userName, Ustar.uname, PaxKey.uname), (entry.groupName, Ustar.gname, PaxKey.gname)] {
            let bytes = Array(name.utf8)
            if bytes.count < 32, isPortable(bytes) {
                put(&block, range, bytes)
            } else {
                records += PaxRecords.encode(key, bytes)
            }
        }
        if entry.kind == .characterDevice || entry.kind == .blockDevice {
            for (value, range) in [(entry.deviceMajor, Ustar.devmajor), (entry.deviceMinor, Ustar.devminor)] {
                guard putOctal(&block, range, UInt64(value)) else {
                    throw ArchiveError(.invalidEntry, "\(entry.path): device number \(value) does not fit a ustar header")
                }
            }
        }
        for x in entry.extendedAttributes.sorted(by: { $0.name < $1.name }) {
            records += PaxRecords.encode(PaxKey.xattrPrefix + x.name, x.value)
        }
        if let raw = entry.efsRaw {
            records += PaxRecords.encode(PaxKey.efsRaw, Array("1".utf8))
            if raw == .directory { records += PaxRecords.encode(PaxKey.efsDirectory, Array("1".utf8)) }
        }
        seal(&block)
        guard !records.isEmpty else { return block }
        guard records.count <= ArchiveLimits.maximumExtendedHeaderSize else {
            throw ArchiveError(.limitExceeded, "\(entry.path): the extended header would be \(records.count) bytes, above \(ArchiveLimits.maximumExtendedHeaderSize)")
        }
        return extendedHeader(for: entry, size: records.count) + records + padding(afterContentOfSize: UInt64(records.count)) + block
    }

    // MARK: - Pieces

    /// The 'x' header block that precedes an entry's records. Its name is cosmetic ("PaxHeaders/NAME").
    static func extendedHeader(for entry: ArchiveEntry, size: Int) -> [UInt8] {
        var block = [UInt8](repeating: 0, count: Ustar.blockSize)
        // "PaxHeaders/BASENAME", cut to the field (cosmetic: pax readers ignore it).
        let utf8 = entry.path.utf8
        let base = utf8.lastIndex(of: UInt8(ascii: "/")).map { utf8[utf8.index(after: $0)...] } ?? utf8[...]
        var name = Array("PaxHeaders/".utf8)
        for b in base.prefix(100 - name.count) { name.append(b >= 0x20 && b < 0x7F ? b : UInt8(ascii: "_")) }
        put(&block, Ustar.name, name)
        putOctal(&block, Ustar.mode, 0o644)
        putOctal(&block, Ustar.uid, 0)
        putOctal(&block, Ustar.gid, 0)
        putOctal(&block, Ustar.size, UInt64(size))
        let seconds = UInt64(max(0, entry.modificationTime.seconds))
        putOctal(&block, Ustar.mtime, min(seconds, Ustar.octalMaximum(width: 12)))
        block[Ustar.typeflag] = UInt8(ascii: "x")
        put(&block, Ustar.magic, Ustar.posixMagic)
        put(&block, Ustar.version, Ustar.posixVersion)
        seal(&block)
        return block
    }

    static func typeflag(_ kind: ArchiveEntry.Kind) -> UInt8 {
        switch kind {
        case .regular: UInt8(ascii: "0")
        case .hardLink: UInt8(ascii: "1")
        case .symbolicLink: UInt8(ascii: "2")
        case .characterDevice: UInt8(ascii: "3")
        case .blockDevice: UInt8(ascii: "4")
        case .directory: UInt8(ascii: "5")
        case .fifo: UInt8(ascii: "6")
        }
    }

    /// Writes the checksum: six octal digits, NUL, space (as POSIX tar does).
    static func seal(_ block: inout [UInt8]) {
        for i in Ustar.checksum { block[i] = UInt8(ascii: " ") }
        var sum: UInt64 = 0
        for b in block { sum &+= UInt64(b) }  // at most 512 × 255: six octal digits
        putOctal(&block, Ustar.checksum.lowerBound..<(Ustar.checksum.upperBound - 1), sum)
    }

    /// Writes `value` as zero-padded octal filling `range` but its last byte, which is NUL. Returns false (and
    /// writes nothing) when it does not fit.
    @discardableResult
    static func putOctal(_ block: inout [UInt8], _ range: Range<Int>, _ value: UInt64) -> Bool {
        guard value <= Ustar.octalMaximum(width: range.count) else { return false }
        var v = value
        block[range.upperBound - 1] = 0
        var i = range.upperBound - 2
        while i >= range.lowerBound {
            block[i] = UInt8(ascii: "0") + UInt8(truncatingIfNeeded: v & 7)
            v >>= 3
            i -= 1
        }
        return true
    }

    static func put(_ block: inout [UInt8], _ range: Range<Int>, _ bytes: some Collection<UInt8>) {
        precondition(bytes.count <= range.count, "a ustar field overflows")  // callers size-check every field
        block.replaceSubrange(range.lowerBound..<(range.lowerBound + bytes.count), with: bytes)
    }

    /// Printable ASCII without NUL: what ustar fields carry; anything else goes into pax records.
    static func isPortable(_ bytes: [UInt8]) -> Bool { bytes.allSatisfy { $0 >= 0x20 && $0 < 0x7F } }

    /// The ustar name and prefix for `path`, or nil when it needs a pax 'path' record.
    static func splitUstarPath(_ path: [UInt8]) -> (prefix: [UInt8], name: [UInt8])? {
        guard isPortable(path) else { return nil }
        if path.count <= 100 { return ([], path) }
        guard path.count <= 256 else { return nil }
        // Split at a '/' so that the prefix has at most 155 bytes and the name at most 100 (and is not empty).
        // A trailing '/' of a directory stays in the name.
        for i in stride(from: min(155, path.count - 2), through: 1, by: -1) where path[i] == UInt8(ascii: "/") {
            let name = Array(path[(i + 1)...])
            if name.count <= 100, !name.isEmpty, name != [UInt8(ascii: "/")] { return (Array(path[..<i]), name) }
            break
        }
        return nil
    }

    /// At most `count` bytes of ASCII from `s` (others become '_'), for cosmetic fields.
    static func asciiPrefix(_ s: String, _ count: Int) -> [UInt8] {
        Array(s.utf8.map { $0 >= 0x20 && $0 < 0x7F ? $0 : UInt8(ascii: "_") }.prefix(count))
    }

    static func validate(_ e: ArchiveEntry) throws(ArchiveError) {
        func bad(_ m: String) -> ArchiveError { ArchiveError(.invalidEntry, "\(e.path.isEmpty ? "(empty path)" : e.path): \(m)") }
        guard !e.path.isEmpty, !e.path.utf8.contains(0) else { throw bad("the path is empty or contains NUL") }
        guard e.path.utf8.count <= ArchiveLimits.maximumPathLength else {
            throw ArchiveError(.limitExceeded, "\(e.path.prefix(64))…: the path is longer than \(ArchiveLimits.maximumPathLength) bytes")
        }
        switch e.kind {
        case .symbolicLink, .hardLink:
            guard let t = e.linkTarget, !t.isEmpty, !t.utf8.contains(0) else { throw bad("a link needs a target without NUL") }
            guard t.utf8.count <= ArchiveLimits.maximumPathLength else {
                throw ArchiveError(.limitExceeded, "\(e.path): the link target is longer than \(ArchiveLimits.maximumPathLength) bytes")
            }
        default:
            guard e.linkTarget == nil else { throw bad("only links have a target") }
        }
        guard e.kind == .regular || e.size == 0 else { throw bad("only regular files have content") }
        guard e.size <= ArchiveLimits.maximumEntrySize else {
            throw ArchiveError(.limitExceeded, "\(e.path): \(e.size) bytes is above the \(ArchiveLimits.maximumEntrySize)-byte limit")
        }
        guard e.efsRaw == nil || e.kind == .regular else { throw bad("only regular entries carry an EFS raw stream") }
        for name in [e.userName, e.groupName] {
            guard name.utf8.count <= ArchiveLimits.maximumNameLength, !name.utf8.contains(0) else { throw bad("bad user or group name") }
        }
        guard e.extendedAttributes.count <= ArchiveLimits.maximumExtendedAttributeCount else {
            throw ArchiveError(.limitExceeded, "\(e.path): more than \(ArchiveLimits.maximumExtendedAttributeCount) extended attributes")
        }
        var seen = Set<String>()
        for x in e.extendedAttributes {
            guard !x.name.isEmpty, !x.name.utf8.contains(where: { $0 == 0 || $0 == UInt8(ascii: "=") }), seen.insert(x.name).inserted else {
                throw bad("extended attribute name '\(x.name)' is empty, repeated, or contains '=' or NUL")
            }
            guard x.name.utf8.count <= ArchiveLimits.maximumExtendedAttributeNameLength,
                x.value.count <= ArchiveLimits.maximumExtendedAttributeValueSize
            else { throw ArchiveError(.limitExceeded, "\(e.path): extended attribute '\(x.name)' is too large") }
        }
    }
}
