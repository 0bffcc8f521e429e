// SPDX-License-Identifier: Apache-2.0
// This file is part of swift-efs. See LICENSE for details.

import EFSCore

/// Windows EFS metadata, version 1 (EFS_Version 1, 2 or 3): the `$EFS` attribute value, which is also the payload
/// of a raw stream's metadata stream (`windows-efs-metadata.md` §4.2, MS-EFSR 2.2.2.1).
///
/// ``parse(_:)`` checks every offset, length and count against the named limits in ``WindowsEFS`` and throws a
/// ``FormatError`` that names the field; ``encode()`` writes the layout `Documentation/windows-format.md` §2
/// describes, which ``parse(_:)`` accepts.
///
/// ```swift
/// let metadata = try WindowsEFSMetadata.parse(efsBytes)
/// for entry in metadata.ddf { print(entry.publicKeyInfo.displayName ?? "?") }
/// let bytes = try metadata.encode()
/// ```
public struct WindowsEFSMetadata: Sendable, Hashable {
    /// EFS_Version: 1 = DESX + RSA, 2 = DESX/3DES/AES-256 + RSA, 3 = also AES-wrapped FEKs. Windows 10 writes 2.
    public var efsVersion: UInt32
    /// Reserved1 (ntfs-3g: "state"). Written as read.
    public var reserved1: UInt32
    /// Reserved2 (ntfs-3g: "crypto_api_version"). Written as read.
    public var reserved2: UInt32
    /// EFS_ID: a GUID unique per machine (16 bytes).
    public var efsID: [UInt8]
    /// EFS_Hash (16 bytes): Windows 2000 stored an MD5 here; later versions write zeros. Not verified.
    public var efsHash: [UInt8]
    /// The Data Decryption Field: the users who can decrypt.
    public var ddf: [WindowsKeyEntry]
    /// The Data Recovery Field: the recovery agents; nil when DRF_Offset is 0 (no DRF).
    public var drf: [WindowsKeyEntry]?

    public init(
        efsVersion: UInt32 = 2, efsID: [UInt8], ddf: [WindowsKeyEntry], drf: [WindowsKeyEntry]?,
        efsHash: [UInt8] = [UInt8](repeating: 0, count: 16), reserved1: UInt32 = 0, reserved2: UInt32 = 0
    ) {
        self.efsVersion = efsVersion
        self.efsID = efsID
        self.ddf = ddf
        self.drf = drf
        self.efsHash = efsHash
        self.reserved1 = reserved1
        self.reserved2 = reserved2
    }

    /// The DDF entries then the DRF entries, each with whether it is a recovery agent's.
    public var allEntries: [(entry: WindowsKeyEntry, isRecovery: Bool)] {
        ddf.map { ($0, false) } + (drf ?? []).map { ($0, true) }
    }

    // MARK: - Parsing

    /// Parses `$EFS` bytes.
    ///
    /// - Throws: ``FormatError`` with
    ///   - `.unsupportedVersion` for metadata versions 2 and 3 ("not supported yet") and unknown EFS_Versions;
    ///   - `.limitExceeded` for a length, count or size above its ``WindowsEFS`` maximum;
    ///   - `.truncated` when the bytes end before the Length field says;
    ///   - `.malformed` for offsets out of range, overlapping structures, gaps above 8 bytes, bad names or SIDs.
    public static func parse(_ bytes: some Collection<UInt8>) throws(FormatError) -> WindowsEFSMetadata {
        let b = Array(bytes)
        // §4.4: metadata version 3 starts with the ".pfile" preamble.
        if b.starts(with: WindowsEFS.pfilePreamble) {
            throw FormatError(.unsupportedVersion, "\(WindowsMetadataFormat.version3) is not supported yet")
        }
        guard b.count <= WindowsEFS.maximumMetadataLength else {
            throw .limitExceeded("$EFS size", value: UInt64(b.count), maximum: WindowsEFS.maximumMetadataLength)
        }
        guard b.count >= 12 else { throw .truncated("$EFS header") }
        let p = Parser(b)
        // §4.2 +0x08 EFS_Version; §4.3/§4.4 for the versions we only recognise.
        let version = try p.u32(0x08, "EFS_Version")
        switch WindowsMetadataFormat.classify(b) {
        case .version1: break
        case .some(let other): throw FormatError(.unsupportedVersion, "\(other) is not supported yet")
        case nil: throw FormatError(.unsupportedVersion, "EFS_Version \(version) is unknown (1–6 are defined)")
        }
        // §4.1: Ntfs.sys rejects a $EFS of at most 0x54 bytes.
        guard b.count >= WindowsEFS.minimumMetadataLength else {
            throw b.count < WindowsEFS.headerSize
                ? .truncated("$EFS header")
                : FormatError(.malformed, "$EFS is \(b.count) bytes; Windows requires more than 0x54")
        }
        // §4.2 +0x00 Length: the whole $EFS.
        let length = try p.u32(0x00, "$EFS Length")
        guard length <= UInt32(WindowsEFS.maximumMetadataLength) else {
            throw .limitExceeded(
                "the $EFS Length field", value: UInt64(length), maximum: WindowsEFS.maximumMetadataLength)
        }
        guard length == UInt32(b.count) else {
            throw length > UInt32(b.count)
                ? FormatError(.truncated, "$EFS Length says \(length) bytes but \(b.count) are present")
                : FormatError(.trailingData, "$EFS Length says \(length) bytes but \(b.count) are present")
        }
        var m = WindowsEFSMetadata(
            efsVersion: version, efsID: Array(b[0x10..<0x20]), ddf: [], drf: nil, efsHash: Array(b[0x20..<0x30]),
            reserved1: try p.u32(0x04, "Reserved1"), reserved2: try p.u32(0x0C, "Reserved2"))
        // §4.2 +0x40 DDF_Offset, +0x44 DRF_Offset (0 = no DRF), both from the start of $EFS.
        let ddfOffset = try p.offset(0x40, base: 0, "DDF_Offset", within: WindowsEFS.headerSize..<b.count)
        let drfRaw = try p.u32(0x44, "DRF_Offset")
        var regions = Regions("$EFS", 0..<b.count)
        regions.add(0..<WindowsEFS.headerSize, "the $EFS header")
        let (ddf, ddfEnd) = try p.keyList(at: ddfOffset, "DDF")
        // A file no user can open: Windows never writes one (the DDF holds at least the owner).
        guard !ddf.isEmpty else { throw FormatError(.malformed, "the DDF key list has no entries") }
        m.ddf = ddf
        regions.add(ddfOffset..<ddfEnd, "the DDF key list")
        if drfRaw != 0 {
            let drfOffset = try p.offset(0x44, base: 0, "DRF_Offset", within: WindowsEFS.headerSize..<b.count)
            // Checked before the DRF is read, so a DRF_Offset into the DDF is reported as what it is.
            guard !(ddfOffset..<ddfEnd).contains(drfOffset) else {
                throw FormatError(
                    .malformed,
                    "the DRF key list (at \(drfOffset)) overlaps the DDF key list (\(ddfOffset)..<\(ddfEnd))")
            }
            let (drf, drfEnd) = try p.keyList(at: drfOffset, "DRF")
            m.drf = drf
            regions.add(drfOffset..<drfEnd, "the DRF key list")
        }
        try regions.check()
        return m
    }
}

// MARK: - Region checks

/// The byte ranges used inside one structure. ``check()`` enforces §4.2: no two overlap, and no unused gap (between
/// them, or after the last one up to the structure's end) exceeds ``WindowsEFS/maximumGap`` bytes.
struct Regions {
    let container: String
    let bounds: Range<Int>
    var used: [(range: Range<Int>, name: String)] = []

    init(_ container: String, _ bounds: Range<Int>) {
        self.container = container
        self.bounds = bounds
    }

    mutating func add(_ r: Range<Int>, _ name: String) { used.append((r, name)) }

    func check() throws(FormatError) {
        var cursor = bounds.lowerBound
        var previous = "the start of \(container)"
        for (range, name) in used.sorted(by: { $0.range.lowerBound < $1.range.lowerBound }) {
            guard range.lowerBound >= bounds.lowerBound, range.upperBound <= bounds.upperBound else {
                throw FormatError(.malformed, "\(name) lies outside \(container)")
            }
            guard range.lowerBound >= cursor else {
                throw FormatError(.malformed, "\(name) overlaps \(previous) in \(container)")
            }
            guard range.lowerBound - cursor <= WindowsEFS.maximumGap else {
                throw FormatError(
                    .malformed,
                    "an unused gap of \(range.lowerBound - cursor) bytes before \(name) in \(container) (at most \(WindowsEFS.maximumGap))"
                )
            }
            cursor = range.upperBound
            previous = name
        }
        guard bounds.upperBound - cursor <= WindowsEFS.maximumGap else {
            throw FormatError(
                .malformed,
                "an unused gap of \(bounds.upperBound - cursor) bytes at the end of \(container) (at most \(WindowsEFS.maximumGap))"
            )
        }
    }
}

// MARK: - The parser

/// Reads fields at absolute offsets of the whole `$EFS`; every read is bounds-checked.
private struct Parser {
    let b: [UInt8]
    init(_ b: [UInt8]) { self.b = b }

    func u32(_ at: Int, _ field: StaticString) throws(FormatError) -> UInt32 {
        guard at >= 0, at <= b.count - 4 else { throw .truncated(field) }
        var r = ByteReader(b[at..<(at + 4)])
        return try r.readUInt32(field)
    }

    /// Reads a 32-bit offset at `at`, adds `base`, and checks the result lies in `within`.
    func offset(_ at: Int, base: Int, _ field: String, within: Range<Int>) throws(FormatError) -> Int {
        let raw = try u32(at, "offset")
        guard let v = Int(exactly: raw), case let (sum, false) = base.addingReportingOverflow(v), within.contains(sum)
        else {
            throw FormatError(.malformed, "\(field) \(raw) is out of range")
        }
        return sum
    }

    /// A length field at `at`, at most `maximum`, at least `minimum`.
    func length(_ at: Int, _ field: String, minimum: Int = 0, maximum: Int) throws(FormatError) -> Int {
        let raw = try u32(at, "length")
        guard let v = Int(exactly: raw), v <= maximum else {
            throw FormatError(.limitExceeded, "\(field) is \(raw), above the maximum \(maximum)")
        }
        guard v >= minimum else { throw FormatError(.malformed, "\(field) is \(v), below the minimum \(minimum)") }
        return v
    }

    /// §4.2 Key list: `u32 count`, then the entries, each starting at the previous one's start + Length.
    func keyList(at start: Int, _ list: String) throws(FormatError) -> ([WindowsKeyEntry], Int) {
        let count = try length(start, "the \(list) entry count", maximum: WindowsEFS.maximumEntriesPerList)
        var entries: [WindowsKeyEntry] = []
        var cursor = start + 4
        for i in 0..<count {
            let name = "\(list) entry \(i)"
            guard cursor <= b.count - 4 else {
                throw FormatError(.malformed, "\(name) of \(count) starts at \(cursor), past the end of $EFS")
            }
            // §4.2 Key list entry +0 Length (whole entry).
            let len = try length(
                cursor, "the Length of \(name)", minimum: WindowsEFS.keyEntryHeaderSize,
                maximum: WindowsEFS.maximumMetadataLength)
            guard len <= b.count - cursor else {
                throw FormatError(.malformed, "the Length of \(name) (\(len)) runs past the end of $EFS")
            }
            entries.append(try keyEntry(cursor..<(cursor + len), name))
            cursor += len
        }
        return (entries, cursor)
    }

    /// §4.2 Key list entry (MS-EFSR 2.2.2.1.2); offsets are from the start of the entry.
    func keyEntry(_ e: Range<Int>, _ name: String) throws(FormatError) -> WindowsKeyEntry {
        let body = (e.lowerBound + WindowsEFS.keyEntryHeaderSize)..<e.upperBound
        // +8 Encrypted FEK length, +12 its offset.
        let fekLength = try length(
            e.lowerBound + 8, "the Encrypted FEK length of \(name)", minimum: 1,
            maximum: WindowsEFS.maximumEncryptedFEKLength)
        let fekStart = try offset(
            e.lowerBound + 12, base: e.lowerBound, "the Encrypted FEK offset of \(name)", within: body)
        guard fekLength <= e.upperBound - fekStart else {
            throw FormatError(.malformed, "the Encrypted FEK of \(name) runs past the end of the entry")
        }
        // +16 Flags.
        let flags = try u32(e.lowerBound + 16, "Flags")
        // +4 Offset to Public Key Information.
        let pkiStart = try offset(
            e.lowerBound + 4, base: e.lowerBound, "the Public Key Information offset of \(name)", within: body)
        let pkiLength = try length(
            pkiStart, "the Public Key Information length of \(name)", minimum: WindowsEFS.publicKeyInfoHeaderSize,
            maximum: e.count)
        guard pkiLength <= e.upperBound - pkiStart else {
            throw FormatError(.malformed, "the Public Key Information of \(name) runs past the end of the entry")
        }
        let pki = try publicKeyInfo(pkiStart..<(pkiStart + pkiLength), name)
        var regions = Regions(name, e)
        regions.add(e.lowerBound..<body.lowerBound, "the entry header")
        regions.add(pkiStart..<(pkiStart + pkiLength), "the Public Key Information")
        regions.add(fekStart..<(fekStart + fekLength), "the Encrypted FEK")
        try regions.check()
        return WindowsKeyEntry(
            flags: flags, publicKeyInfo: pki, encryptedFEK: Array(b[fekStart..<(fekStart + fekLength)]))
    }

    /// §4.2 Public Key Information (MS-EFSR 2.2.2.1.3); offsets are from its start.
    func publicKeyInfo(_ p: Range<Int>, _ entry: String) throws(FormatError) -> WindowsPublicKeyInfo {
        let name = "the Public Key Information of \(entry)"
        let body = (p.lowerBound + WindowsEFS.publicKeyInfoHeaderSize)..<p.upperBound
        var regions = Regions(name, p)
        regions.add(p.lowerBound..<body.lowerBound, "its header")
        // +4 Offset to Owner Hint (0 = absent): an RPC SID.
        var sid: WindowsSID?
        if try u32(p.lowerBound + 4, "Owner Hint offset") != 0 {
            let start = try offset(
                p.lowerBound + 4, base: p.lowerBound, "the Owner Hint (SID) offset of \(entry)", within: body)
            do throws(FormatError) {
                let s = try WindowsSID.parse(b[start..<p.upperBound])
                sid = s
                regions.add(start..<(start + s.encodedSize), "the Owner Hint (SID)")
            } catch {
                throw FormatError(error.code, "the Owner Hint of \(entry): \(error.message)")
            }
        }
        // +8 type: MS-EFSR fixes it at 3 (certificate thumbprint).
        let type = try u32(p.lowerBound + 8, "Public Key Information type")
        guard type == WindowsEFS.publicKeyInfoTypeThumbprint else {
            throw FormatError(
                .unsupportedAlgorithm,
                "the Public Key Information of \(entry) has type \(type)\(type == 1 ? " (CryptoAPI container)" : ""); MS-EFSR allows only 3 (certificate thumbprint)"
            )
        }
        // +12 Length of Certificate Data, +16 its offset.
        let certLength = try length(
            p.lowerBound + 12, "the Certificate Data length of \(entry)", minimum: WindowsEFS.certificateDataHeaderSize,
            maximum: WindowsEFS.maximumCertificateDataLength)
        let certStart = try offset(
            p.lowerBound + 16, base: p.lowerBound, "the Certificate Data offset of \(entry)", within: body)
        guard certLength <= p.upperBound - certStart else {
            throw FormatError(
                .malformed, "the Certificate Data of \(entry) runs past the end of its Public Key Information")
        }
        let cert = try certificateData(certStart..<(certStart + certLength), entry)
        regions.add(certStart..<(certStart + certLength), "the Certificate Data")
        try regions.check()
        return WindowsPublicKeyInfo(sid: sid, certificate: cert)
    }

    /// §4.2 Certificate Data (MS-EFSR 2.2.2.1.4); offsets are from its start.
    func certificateData(_ c: Range<Int>, _ entry: String) throws(FormatError) -> WindowsCertificateHash {
        let name = "the Certificate Data of \(entry)"
        let body = (c.lowerBound + WindowsEFS.certificateDataHeaderSize)..<c.upperBound
        var regions = Regions(name, c)
        regions.add(c.lowerBound..<body.lowerBound, "its header")
        // +0 Offset to Thumbprint, +4 Thumbprint length.
        let thumbLength = try length(
            c.lowerBound + 4, "the thumbprint length of \(entry)", minimum: 1,
            maximum: WindowsEFS.maximumThumbprintLength)
        let thumbStart = try offset(c.lowerBound, base: c.lowerBound, "the thumbprint offset of \(entry)", within: body)
        guard thumbLength <= c.upperBound - thumbStart else {
            throw FormatError(.malformed, "the thumbprint of \(entry) runs past the end of its Certificate Data")
        }
        regions.add(thumbStart..<(thumbStart + thumbLength), "the thumbprint")
        // +8 container, +12 provider, +16 display name: NUL-terminated UTF-16LE, 0 = absent.
        var names: [String?] = []
        for (i, field) in ["container name", "provider name", "display name"].enumerated() {
            let at = c.lowerBound + 8 + 4 * i
            guard try u32(at, "name offset") != 0 else {
                names.append(nil)
                continue
            }
            let start = try offset(at, base: c.lowerBound, "the \(field) offset of \(entry)", within: body)
            let (text, end) = try utf16z(start..<c.upperBound, "the \(field) of \(entry)")
            regions.add(start..<end, "the \(field)")
            names.append(text)
        }
        try regions.check()
        return WindowsCertificateHash(
            thumbprint: Array(b[thumbStart..<(thumbStart + thumbLength)]), containerName: names[0],
            providerName: names[1],
            displayName: names[2])
    }

    /// A NUL-terminated UTF-16LE string starting at `r.lowerBound`, ending before `r.upperBound`. Returns the text
    /// and the offset just past the terminating NUL.
    func utf16z(_ r: Range<Int>, _ field: String) throws(FormatError) -> (String, Int) {
        var units: [UInt16] = []
        var i = r.lowerBound
        while true {
            guard i + 2 <= r.upperBound else { throw FormatError(.malformed, "\(field) is not NUL-terminated") }
            let u = UInt16(b[i]) | UInt16(b[i + 1]) << 8
            i += 2
            if u == 0 { break }
            units.append(u)
        }
        var text = ""
        var it = units.makeIterator()
        var decoder = UTF16()
        while true {
            switch decoder.decode(&it) {
            case .scalarValue(let s): text.unicodeScalars.append(s)
            case .emptyInput: return (text, i)
            case .error: throw FormatError(.malformed, "\(field) is not valid UTF-16")
            }
        }
    }
}
