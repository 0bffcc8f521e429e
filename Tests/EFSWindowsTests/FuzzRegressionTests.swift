// SPDX-License-Identifier: Apache-2.0
// This file is part of swift-efs. See LICENSE for details.

import EFSCore
import EFSRawStream
import Testing

@testable import EFSWindows

/// Inputs found by the libFuzzer targets in `FuzzTesting/` (STYLE.md item 23). The fuzzer's own input is kept in
/// `FuzzTesting/FailCases/` and replayed by `FuzzTesting/run.sh`.
@Suite("Fuzz regressions: Windows raw streams")
struct WindowsFuzzRegressionTests {
    /// FuzzWindowsRawStream (`FuzzTesting/FailCases/FuzzWindowsRawStream-data-unit-shift-1`): a segment with
    /// DataUnitShift 1, ChunkShift 9 and no `EXTD`. `encode()` wrote the shifts and `EXTD` it would choose itself, so
    /// the re-encoded object differed from the one read. Segments are now written with every header field as read.
    @Test("a segment's shifts and absent EXTD survive re-encoding")
    func dataUnitShiftOne() throws {
        let fek = try WindowsFEK(algorithm: .aes256, key: pattern(32))
        let c = try WindowsDataCipher(fek: fek)
        let header = DataSegmentHeader(
            startingFileOffset: 0, bytesWithinStreamSize: 511, bytesWithinVDL: 511, dataUnitShift: 1, chunkShift: 9,
            clusterShift: 12, dataBlockSizes: [512], extendedFlags: nil)
        let object = try WindowsRawObject(
            metadataBytes: sampleMetadata(fek).encode(),
            streams: [.init(kind: .data, segments: [.init(header: header, payload: encryptAll(c, pattern(511)))])])
        let encoded = try object.encode()
        let again = try WindowsRawObject.parse(encoded)
        #expect(again.streams == object.streams)
        #expect(try again.encode() == encoded)
        #expect(try again.decrypt(again.streams[0], cipher: c) == pattern(511))
    }
}
