// SPDX-License-Identifier: Apache-2.0
// This file is part of swift-efs. See LICENSE for details.

import EFSArchive
import EFSSystem
import SystemPackage

extension EFSBackup {
    /// Checks a whole archive without any key and without writing anything: every header and pax record, the
    /// end-of-archive marker, that every path would be restored below the destination, and every raw stream's
    /// structure (framing, metadata, segment layout, named streams) as an import would check it.
    ///
    /// A malformed raw stream or an unsafe path is reported to `issues` and counted in ``Summary/failures``; the
    /// check goes on with the next entry.
    ///
    /// - Throws: ``EFSError/Code/corrupt`` when the archive itself is malformed or truncated.
    @discardableResult
    public static func verify(
        from input: FileDescriptor, issues: (Issue) -> Void = { _ in }, progress: (Progress) -> Void = { _ in }
    ) throws(EFSError) -> Summary {
        let source = ArchiveInput(input)
        var summary = Summary()
        func report(_ path: String, _ error: EFSError, warning: Bool) {
            if warning {
                summary.warnings += 1
            } else {
                summary.failures += 1
                summary.lastFailure = error
            }
            issues(Issue(path: path, error: error, isWarning: warning))
        }
        while let entry = try source.next() {
            do throws(EFSError) {
                _ = try Restorer.check(entry)
                if entry.kind == .characterDevice || entry.kind == .blockDevice {
                    report(entry.path, EFSError(.notSupported, "a device node: restore skips it"), warning: true)
                }
                if let raw = entry.efsRaw {
                    var check = RawStreamCheck(isDirectory: raw == .directory)
                    var sinceTick: UInt64 = 0
                    while true {
                        let chunk = try source.readContent(maximum: RawContext.importChunkSize)
                        if chunk.isEmpty { break }
                        try check.feed(chunk)
                        sinceTick += UInt64(chunk.count)
                        if sinceTick >= 4 << 20 {
                            sinceTick = 0
                            progress(Progress(entries: summary.entries, bytes: source.offset, path: entry.path))
                        }
                    }
                    try check.finish()
                    summary.rawStreams += 1
                }
                summary.entries += 1
            } catch {
                if let fatal = source.failure { throw fatal }
                report(entry.path, error, warning: false)
            }
            progress(Progress(entries: summary.entries, bytes: source.offset, path: entry.path))
        }
        summary.bytes = source.offset
        return summary
    }
}
