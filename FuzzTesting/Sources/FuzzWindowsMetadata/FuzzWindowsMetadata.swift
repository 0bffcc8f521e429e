// SPDX-License-Identifier: Apache-2.0
// This file is part of swift-efs. See LICENSE for details.

import EFSCore
import EFSWindows
import FuzzSupport

// Fuzzes the Windows `$EFS` metadata parser (`WindowsEFSMetadata.parse`, issue 5), and on the same bytes the FEK
// structure parser (`WindowsFEK.parse`) and the metadata version classifier.
//
// Input: the `$EFS` bytes. Invariants (reported as a crash when broken):
// - an accepted `$EFS` respects the named limits of `WindowsEFS`;
// - it re-encodes, and the re-encoding parses to the same value and is canonical (encode ∘ parse ∘ encode is the
//   identity); re-encoding may only fail with limitExceeded (its 4-byte alignment can add up to 3 bytes per entry);
// - a v2/v3 classification is never parsed as v1.

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    let input = Array(UnsafeRawBufferPointer(start: start, count: count))
    _ = try? WindowsFEK.parse(input)
    let format = WindowsMetadataFormat.classify(input)
    let metadata: WindowsEFSMetadata
    do {
        metadata = try WindowsEFSMetadata.parse(input)
    } catch {
        Fuzz.note("$EFS refused: \(error)")
        return 0
    }
    if case .version1 = format {
    } else {
        Fuzz.check(false, "accepted metadata classified as \(String(describing: format))")
    }
    Fuzz.check(input.count > WindowsEFS.headerSize && input.count <= WindowsEFS.maximumMetadataLength, "size limits")
    Fuzz.check(!metadata.ddf.isEmpty && metadata.ddf.count <= WindowsEFS.maximumEntriesPerList, "DDF count")
    Fuzz.check((metadata.drf?.count ?? 0) <= WindowsEFS.maximumEntriesPerList, "DRF count")
    for (e, _) in metadata.allEntries {
        Fuzz.check((1...WindowsEFS.maximumEncryptedFEKLength).contains(e.encryptedFEK.count), "Encrypted FEK length")
        Fuzz.check(
            (1...WindowsEFS.maximumThumbprintLength).contains(e.publicKeyInfo.thumbprint.count), "thumbprint length")
        Fuzz.check((e.publicKeyInfo.sid?.subAuthorities.count ?? 0) <= WindowsEFS.maximumSIDSubAuthorities, "SID")
    }
    let encoded: [UInt8]
    do {
        encoded = try metadata.encode()
    } catch {
        Fuzz.check(error.code == .limitExceeded, "an accepted $EFS does not re-encode: \(error)")
        return 0
    }
    do {
        let again = try WindowsEFSMetadata.parse(encoded)
        Fuzz.check(again == metadata, "re-encoding changed the metadata")
        Fuzz.check(try again.encode() == encoded, "re-encoding is not canonical")
    } catch {
        Fuzz.check(false, "the re-encoded $EFS is refused: \(error)")
    }
    return 0
}

@_cdecl("FuzzWindowsMetadata_main")
public func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> CInt {
    Fuzz.runDriver(argc, argv) { data, size in fuzz(UnsafeRawPointer(data!), size) }
}
