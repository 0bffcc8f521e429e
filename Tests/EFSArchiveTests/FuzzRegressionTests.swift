// SPDX-License-Identifier: Apache-2.0
// This file is part of swift-efs. See LICENSE for details.

import EFSArchive
import Testing

/// Inputs found by the libFuzzer targets in `FuzzTesting/` (STYLE.md item 23). Each goes through the same entry as
/// the fuzz target and must be refused with a thrown error, never a crash. The fuzzer's own input is kept in
/// `FuzzTesting/FailCases/` and replayed by `FuzzTesting/run.sh`.
@Suite("Fuzz regressions: archive reader")
struct ArchiveFuzzRegressionTests {
    /// FuzzArchive (`FuzzTesting/FailCases/FuzzArchive-two-bad-pax-records`): an 'x' header with two bad records,
    /// `EFS.raw=2` and an `mtime` that is not a number. The reader applied the records in Dictionary order, which
    /// differs from one Dictionary instance to the next, so the same archive was refused with `malformed` on one
    /// read and `badNumber` on another (the fuzzer saw it as the whole and the split read disagreeing).
    @Test("two bad pax records give the same error on every read and every split")
    func twoBadPaxRecords() throws {
        let content = Block.record("EFS.raw", "2") + Block.record("mtime", [0x31, 0xC9, 0x30])
        let bytes = Block.meta("x", content) + Block.make("vol/hello.txt") + Block.end
        var codes: Set<ArchiveError.Code> = []
        for chunk in [0, 1, 7, 512, 513] {
            for _ in 0..<16 {
                #expect(throws: ArchiveError.self) { try readAll(bytes, chunk: chunk) }
                do { _ = try readAll(bytes, chunk: chunk) } catch { codes.insert(error.code) }
            }
        }
        // Records are applied in keyword order: "EFS.raw" sorts before "mtime".
        #expect(codes == [.malformed])
    }
}
