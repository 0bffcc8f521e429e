// SPDX-License-Identifier: Apache-2.0
// This file is part of swift-efs. See LICENSE for details.

import EFSCore

extension WindowsEFSMetadata {
    /// Writes the `$EFS` bytes (`Documentation/windows-format.md` §2, after `windows-efs-metadata.md` §4.2).
    ///
    /// Layout: the 0x54-byte header, the DDF key list at 0x54, the DRF key list right after it. In each entry the
    /// Public Key Information follows the 20-byte entry header, and the Encrypted FEK follows it at the next 4-byte
    /// boundary (0–3 zero bytes between them). In each Public Key Information the SID follows the 28-byte header and
    /// the Certificate Data follows the SID; in the Certificate Data the thumbprint and the NUL-terminated names
    /// follow the 20-byte header with no padding. This reproduces the sizes of the public Windows 10 sample
    /// (`$EFS` 0x5D8 bytes, DRF at 0x42C) and leaves no gap above 3 bytes.
    ///
    /// - Throws: ``FormatError`` (`.limitExceeded` / `.malformed`) when a value breaks a limit that
    ///   ``parse(_:)`` enforces, so what this writes always parses.
    public func encode() throws(FormatError) -> [UInt8] {
        guard efsID.count == 16 else { throw FormatError(.malformed, "EFS_ID is \(efsID.count) bytes, not 16") }
        guard efsHash.count == 16 else { throw FormatError(.malformed, "EFS_Hash is \(efsHash.count) bytes, not 16") }
        guard (1...3).contains(efsVersion) else {
            throw FormatError(.unsupportedVersion, "EFS_Version \(efsVersion) is not a metadata version 1 value (1–3)")
        }
        guard !ddf.isEmpty else { throw FormatError(.malformed, "the DDF key list has no entries") }
        let ddfBytes = try Self.encodeList(ddf, "DDF")
        let drfBytes = try drf.map { (list: [WindowsKeyEntry]) throws(FormatError) -> [UInt8] in
            try Self.encodeList(list, "DRF")
        }
        let total = WindowsEFS.headerSize + ddfBytes.count + (drfBytes?.count ?? 0)
        guard total <= WindowsEFS.maximumMetadataLength else {
            throw .limitExceeded("$EFS size", value: UInt64(total), maximum: WindowsEFS.maximumMetadataLength)
        }
        var w = ByteWriter(capacity: total)
        w.write(UInt32(total))  // +0x00 Length
        w.write(reserved1)  // +0x04 Reserved1
        w.write(efsVersion)  // +0x08 EFS_Version
        w.write(reserved2)  // +0x0C Reserved2
        w.write(bytes: efsID)  // +0x10 EFS_ID
        w.write(bytes: efsHash)  // +0x20 EFS_Hash
        w.writeZeros(16)  // +0x30 Reserved3
        w.write(UInt32(WindowsEFS.headerSize))  // +0x40 DDF_Offset
        w.write(drfBytes == nil ? UInt32(0) : UInt32(WindowsEFS.headerSize + ddfBytes.count))  // +0x44 DRF_Offset
        w.writeZeros(12)  // +0x48 Reserved4
        w.write(bytes: ddfBytes)
        if let drfBytes { w.write(bytes: drfBytes) }
        return w.bytes
    }

    static func padded(_ bytes: inout [UInt8]) {
        while bytes.count % 4 != 0 { bytes.append(0) }
    }

    static func encodeList(_ entries: [WindowsKeyEntry], _ list: String) throws(FormatError) -> [UInt8] {
        guard entries.count <= WindowsEFS.maximumEntriesPerList else {
            throw FormatError(
                .limitExceeded,
                "the \(list) has \(entries.count) entries, above the maximum \(WindowsEFS.maximumEntriesPerList)")
        }
        var w = ByteWriter()
        w.write(UInt32(entries.count))
        for (i, e) in entries.enumerated() { w.write(bytes: try encodeEntry(e, "\(list) entry \(i)")) }
        return w.bytes
    }

    /// §4.2 Key list entry.
    static func encodeEntry(_ e: WindowsKeyEntry, _ name: String) throws(FormatError) -> [UInt8] {
        guard (1...WindowsEFS.maximumEncryptedFEKLength).contains(e.encryptedFEK.count) else {
            throw FormatError(
                .limitExceeded,
                "the Encrypted FEK of \(name) is \(e.encryptedFEK.count) bytes, outside 1…\(WindowsEFS.maximumEncryptedFEKLength)"
            )
        }
        var pki = try encodePublicKeyInfo(e.publicKeyInfo, name)
        padded(&pki)  // the Encrypted FEK starts on a 4-byte boundary
        let fek = e.encryptedFEK
        let pkiOffset = WindowsEFS.keyEntryHeaderSize
        let fekOffset = pkiOffset + pki.count
        var w = ByteWriter(capacity: fekOffset + fek.count)
        w.write(UInt32(fekOffset + fek.count))  // +0 Length
        w.write(UInt32(pkiOffset))  // +4 Offset to Public Key Information
        w.write(UInt32(e.encryptedFEK.count))  // +8 Encrypted FEK length
        w.write(UInt32(fekOffset))  // +12 Offset to Encrypted FEK
        w.write(e.flags)  // +16 Flags
        w.write(bytes: pki)
        w.write(bytes: fek)
        return w.bytes
    }

    /// §4.2 Public Key Information.
    static func encodePublicKeyInfo(_ p: WindowsPublicKeyInfo, _ name: String) throws(FormatError) -> [UInt8] {
        let hash = p.certificate
        var sid: [UInt8] = []
        if let s = p.sid {
            guard s.subAuthorities.count <= WindowsEFS.maximumSIDSubAuthorities, s.revision == 1 else {
                throw FormatError(
                    .malformed, "the SID of \(name) is not a revision-1 SID of at most 15 sub-authorities")
            }
            sid = s.bytes
        }
        let cert = try encodeCertificateData(hash, name)
        guard cert.count <= WindowsEFS.maximumCertificateDataLength else {
            throw FormatError(
                .limitExceeded,
                "the Certificate Data of \(name) is \(cert.count) bytes, above \(WindowsEFS.maximumCertificateDataLength)"
            )
        }
        let sidOffset = WindowsEFS.publicKeyInfoHeaderSize
        let certOffset = sidOffset + sid.count
        var w = ByteWriter(capacity: certOffset + cert.count)
        w.write(UInt32(certOffset + cert.count))  // +0 Length
        w.write(sid.isEmpty ? UInt32(0) : UInt32(sidOffset))  // +4 Offset to Owner Hint
        w.write(WindowsEFS.publicKeyInfoTypeThumbprint)  // +8 type 3
        w.write(UInt32(cert.count))  // +12 Length of Certificate Data
        w.write(UInt32(certOffset))  // +16 Offset to Certificate Data
        w.writeZeros(8)  // +20 Reserved
        w.write(bytes: sid)
        w.write(bytes: cert)
        return w.bytes
    }

    /// §4.2 Certificate Data.
    static func encodeCertificateData(_ h: WindowsCertificateHash, _ name: String) throws(FormatError) -> [UInt8] {
        guard (1...WindowsEFS.maximumThumbprintLength).contains(h.thumbprint.count) else {
            throw FormatError(
                .limitExceeded,
                "the thumbprint of \(name) is \(h.thumbprint.count) bytes, outside 1…\(WindowsEFS.maximumThumbprintLength)"
            )
        }
        var body: [UInt8] = h.thumbprint
        var offsets: [UInt32] = []
        for text in [h.containerName, h.providerName, h.displayName] {
            guard let text else {
                offsets.append(0)
                continue
            }
            guard !text.unicodeScalars.contains("\0") else {
                throw FormatError(.malformed, "a name of \(name) contains NUL")
            }
            offsets.append(UInt32(WindowsEFS.certificateDataHeaderSize + body.count))
            for u in text.utf16 { body += [UInt8(truncatingIfNeeded: u), UInt8(truncatingIfNeeded: u >> 8)] }
            body += [0, 0]
            guard body.count <= WindowsEFS.maximumCertificateDataLength else {
                throw FormatError(.limitExceeded, "the names of \(name) are too long for its Certificate Data")
            }
        }
        var w = ByteWriter(capacity: WindowsEFS.certificateDataHeaderSize + body.count)
        w.write(UInt32(WindowsEFS.certificateDataHeaderSize))  // +0 Offset to Thumbprint
        w.write(UInt32(h.thumbprint.count))  // +4 Thumbprint length
        for o in offsets { w.write(o) }  // +8 container, +12 provider, +16 display name
        w.write(bytes: body)
        return w.bytes
    }
}
