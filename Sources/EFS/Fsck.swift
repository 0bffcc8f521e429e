// SPDX-License-Identifier: Apache-2.0
// This file is part of swift-efs. See LICENSE for details.

import EFSCore
import EFSSystem
import SystemPackage

/// `efs fsck`: checks every encrypted file of a tree.
///
/// Without keys it checks each file's header, metadata slots, key lists and the layout of its data region. With a
/// session (`--keys`) it also unwraps each file's FEK and authenticates every block and both size records. It
/// reports each problem with the file name and, for blocks, the plaintext byte range. `repair` removes temporary
/// litter left by a crash (`.NAME.efs-tmp-XXXX`) and completes overwrites a crash interrupted (from their redo
/// records), and nothing else: it never deletes or changes data the user wrote.
public struct FileSystemCheck: Sendable {
    /// One finding.
    public struct Problem: Sendable, CustomStringConvertible {
        public enum Kind: String, Sendable { case corrupt, authentication, noKey, litter, unreadable, interruptedWrite }
        public var path: FilePath
        public var kind: Kind
        public var message: String
        public var description: String { "\(path): \(message)" }
    }

    public struct Report: Sendable {
        public var filesChecked = 0
        public var encryptedFiles = 0
        public var blocksAuthenticated: UInt64 = 0
        public var problems: [Problem] = []
        public var litterRemoved: [FilePath] = []
        /// Files whose interrupted overwrite `repair` completed from its redo record.
        public var writesCompleted: [FilePath] = []
        public var isClean: Bool { problems.isEmpty }
    }

    public let session: EFSSession?
    public let repair: Bool

    public init(session: EFSSession?, repair: Bool) {
        self.session = session
        self.repair = repair
    }

    /// Checks `root` and everything below it.
    public func check(_ root: FilePath, progress: ((FilePath) -> Void)? = nil) -> Report {
        var report = Report()
        walk(root, &report, progress)
        return report
    }

    private func walk(_ path: FilePath, _ report: inout Report, _ progress: ((FilePath) -> Void)?) {
        guard let st = try? Sys.lstat(path) else {
            report.problems.append(Problem(path: path, kind: .unreadable, message: "cannot stat"))
            return
        }
        let name = path.lastComponent?.string ?? ""
        if TemporaryName.isTemporary(name) {
            if repair, Self.removeLitter(path, st) {
                report.litterRemoved.append(path)
            } else {
                report.problems.append(Problem(path: path, kind: .litter, message: "temporary file left by an interrupted operation (efs fsck --repair removes it)"))
            }
            return
        }
        switch st.kind {
        case .directory:
            guard let entries = try? Sys.listDirectory(path) else {
                report.problems.append(Problem(path: path, kind: .unreadable, message: "cannot list the directory"))
                return
            }
            for e in entries { walk(path.appending(e.name), &report, progress) }
        case .regular:
            report.filesChecked += 1
            progress?(path)
            checkFile(path, &report)
        case .symlink, .other:
            return
        }
    }

    /// Removes a temporary file, or a temporary directory (one `efs restore` made and had not renamed into place)
    /// that holds nothing but its directory marker and temporary files. Anything else stays.
    private static func removeLitter(_ path: FilePath, _ st: FileStatus) -> Bool {
        guard st.kind == .directory else { return (try? Sys.unlink(path)) != nil }
        guard let entries = try? Sys.listDirectory(path),
            entries.allSatisfy({ !$0.isDirectory && ($0.name == DirectoryMarker.name || TemporaryName.isTemporary($0.name)) })
        else { return false }
        for e in entries where (try? Sys.unlink(path.appending(e.name))) == nil { return false }
        return (try? Sys.rmdir(path)) != nil
    }

    private func checkFile(_ path: FilePath, _ report: inout Report) {
        guard let fd = try? Sys.open(path, .readOnly) else {
            report.problems.append(Problem(path: path, kind: .unreadable, message: "cannot open"))
            return
        }
        defer { Sys.close(fd) }
        guard EncryptedFileInfo.hasMagic(fd) else { return }
        report.encryptedFiles += 1
        var info: EncryptedFileInfo
        do { info = try EncryptedFileInfo.read(fd, path: nil) } catch {
            report.problems.append(Problem(path: path, kind: .corrupt, message: error.message))
            return
        }
        if info.journal != nil {
            // A crash interrupted an in-place overwrite (file-format.md §5.4). Completing it restores the state
            // the write left (or drops a torn record): it changes no data the user wrote.
            if repair {
                EFSSession.completePendingWrite(at: path)
                if let again = try? EncryptedFileInfo.read(fd, path: nil), again.journal == nil {
                    info = again
                    report.writesCompleted.append(path)
                }
            }
            if info.journal != nil {
                report.problems.append(Problem(path: path, kind: .interruptedWrite, message: "an overwrite interrupted by a crash is pending: opening the file, or efs fsck --repair, completes it"))
            }
        }
        // Both slots: a valid one that is not the active one is expected only between the two writes of a flip.
        if let session {
            let fek: FileEncryptionKey
            do { fek = try session.fileKey(for: info.metadata, path: nil) } catch {
                let kind: Problem.Kind = error.code == .noKey ? .noKey : .authentication
                report.problems.append(Problem(path: path, kind: kind, message: error.message))
                return
            }
            let file: EncryptedFile
            do {
                file = try EncryptedFile(path: nil, fd: fd, closesDescriptor: false, writable: false, info: info, fek: fek, deferSizeUpdates: false)
            } catch {
                report.problems.append(Problem(path: path, kind: .authentication, message: error.message))
                return
            }
            let size = file.size
            let bs = UInt64(ContentCipher.blockSize)
            var off: UInt64 = 0
            let chunk = UInt64(BlockStream.blocksPerChunk) * bs
            while off < size {
                let n = min(chunk, size - off)
                do {
                    _ = try file.readParallel(at: off, count: Int(n))
                    report.blocksAuthenticated += (n + bs - 1) / bs
                } catch {
                    // Find the bad blocks one by one so each is reported with its range.
                    var b = off
                    while b < off + n {
                        do { _ = try file.read(at: b, count: Int(bs)) } catch {
                            report.problems.append(Problem(path: path, kind: .authentication, message: "authentication failed in bytes \(b)..<\(min(size, b + bs))"))
                        }
                        report.blocksAuthenticated += 1
                        b += bs
                    }
                }
                off += n
            }
        }
    }
}
