// SPDX-License-Identifier: Apache-2.0
// This file is part of swift-efs. See LICENSE for details.

import EFSCore
import FuzzSupport

// Fuzzes `FileMetadata(decoding:)` (the DDF/DRF key lists, `Documentation/file-format.md` §4.2–4.3) with
// `authenticate(_:)`, and `RawMetadata(decoding:)` (the metadata stream of a raw stream,
// `Documentation/raw-stream-format.md` §3) with what an importer does next.
//
// Input: a mode byte, then the bytes. Mode bit 7 set: the bytes are a raw metadata payload; clear: a metadata body.
// Bits 0–2 (`FixUp.Mode`) repair checksums, MACs (with `FuzzKey`) and entry thumbprints before parsing, so the
// checks behind them are reached.

func checkMetadata(_ m: FileMetadata, body: [UInt8]) {
    Fuzz.check(!m.users.isEmpty && m.users.count <= Limits.maximumEntriesPerList, "DDF count")
    Fuzz.check(m.recoveryAgents.count <= Limits.maximumEntriesPerList, "DRF count")
    for e in m.allEntries {
        Fuzz.check(e.certificateDER.count <= Limits.maximumCertificateSize, "certificate size")
        Fuzz.check(e.wrappedKey.count <= Limits.maximumWrappedKeySize, "wrapped key size")
        Fuzz.check(Thumbprint(certificateDER: e.certificateDER) == e.thumbprint, "thumbprint")
    }
    let fek = FuzzKey.fek(for: m.fileID)
    // An accepted body re-encodes byte for byte (apart from the MAC, which needs the real key).
    Fuzz.check(Array(m.encoded(fek).dropLast(FileMetadata.macSize)) == Array(body.dropLast(FileMetadata.macSize)),
               "an accepted metadata body does not re-encode")
    Fuzz.note("metadata ok: \(m.users.count) users, \(m.recoveryAgents.count) agents")
    do { try m.authenticate(fek); Fuzz.note("metadata authenticated") } catch { Fuzz.note("metadata: \(error)") }
    for e in m.allEntries { _ = e.displayName }  // parses the stored certificate, as `efs users` does
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    let input = Array(UnsafeRawBufferPointer(start: start, count: count))
    guard let modeByte = input.first else { return 0 }
    let mode = FixUp.Mode(rawValue: modeByte)
    var b = Array(input.dropFirst())
    if modeByte & 0x80 == 0 {
        if mode.contains(.thumbprints) { FixUp.thumbprints(&b, in: 0..<b.count) }
        if mode.contains(.macs) { FixUp.metadataMAC(&b, in: 0..<b.count) }
        do { checkMetadata(try FileMetadata(decoding: b), body: b) } catch { Fuzz.note("metadata: \(error)") }
    } else {
        FixUp.rawMetadata(&b, mode: mode)
        var decoded: RawMetadata?
        do { decoded = try RawMetadata(decoding: b) } catch { Fuzz.note("raw metadata: \(error)") }
        if let raw = decoded {
            Fuzz.note("raw metadata ok")
            Fuzz.check(raw.header.encoded() == Array(b[0..<64]), "raw metadata header does not re-encode")
            Fuzz.check(raw.sizeRecordBytes == Array(b[64..<192]), "size record bytes")
            Fuzz.check(224 + raw.metadataBody.count == b.count, "raw metadata length")
            checkMetadata(raw.metadata, body: raw.metadataBody)
            // What `efs raw import` does with it: check the size records and metadata with the file's key.
            let fek = FuzzKey.fek(for: raw.header.fileID)
            do {
                let r = try SizeRecord.current(raw.sizeRecordBytes[0..<64], raw.sizeRecordBytes[64..<128], fek)
                Fuzz.note("size record ok: \(r.plaintextSize) bytes")
            } catch { Fuzz.note("size records: \(error)") }
            _ = raw.claimedPlaintextSize
            _ = raw.claimsSparse
        }
    }
    return 0
}

@_cdecl("FuzzFileMetadata_main")
public func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> CInt {
    Fuzz.runDriver(argc, argv) { data, size in fuzz(UnsafeRawPointer(data!), size) }
}
