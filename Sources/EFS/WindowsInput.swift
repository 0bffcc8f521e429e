// SPDX-License-Identifier: Apache-2.0
// This file is part of swift-efs. See LICENSE for details.

import EFSCore
import EFSRawStream
import EFSSystem
import EFSWindows
import SystemPackage

/// Windows EFS data on disk, in one of the forms `efs windows` reads (`Documentation/windows-format.md`).
///
/// ```swift
/// let input = try WindowsInput.detect(FilePath("report.robs"), efsInfo: nil)
/// let info = try input.inspect()
/// print(info.metadata.ddf.count, info.streams.map(\.name))
/// ```
public enum WindowsInput: Sendable, Hashable {
    /// A Windows raw stream (ROBS): what `ReadEncryptedFileRaw` and backup tools write.
    case robs(FilePath)
    /// ntfs-3g's form: the `efs_raw` read of the unnamed stream and the `$EFS` bytes of `system.ntfs_efsinfo`.
    case ntfs3g(efsRaw: FilePath, efsInfo: FilePath)
    /// A bare `$EFS` (metadata only: users and recovery agents, no data). Only inspection is possible.
    case metadata(FilePath)

    /// The file named on the command line.
    public var path: FilePath {
        switch self {
        case .robs(let p), .metadata(let p), .ntfs3g(let p, _): p
        }
    }

    /// What the form is called in output.
    public var formName: String {
        switch self {
        case .robs: "Windows raw stream (ROBS)"
        case .ntfs3g: "ntfs-3g efs_raw + $EFS"
        case .metadata: "$EFS metadata"
        }
    }

    /// Chunk size of reads from the input.
    static let readChunk = 1 << 20

    /// Tells the forms apart: with `efsInfo` the file is an `efs_raw`; otherwise a ROBS header or a `$EFS`
    /// (``WindowsMetadataFormat/classify(_:)``) decides.
    ///
    /// - Throws: `fileNotFound` / `accessDenied` for unreadable files; ``EFSError/Code/notExportFormat`` when the
    ///   file is neither.
    public static func detect(_ file: FilePath, efsInfo: FilePath?) throws(EFSError) -> WindowsInput {
        if let efsInfo { return .ntfs3g(efsRaw: file, efsInfo: efsInfo) }
        let (head, size) = try mapErrors(file, "cannot read") { () throws -> ([UInt8], Int64) in
            let fd = try Sys.open(file, .readOnly)
            defer { Sys.close(fd) }
            return (try Sys.pread(fd, count: RawStream.headerSize, at: 0), try Sys.fstat(fd).size)
        }
        let robs = RawStream.version + RawStream.signatureROBS
        if head.starts(with: robs) { return .robs(file) }
        if WindowsMetadataFormat.classify(head) != nil { return .metadata(file) }
        // A $EFS of an unknown EFS_Version: its Length field is the file's size (parsing names the version).
        if head.count >= 12, Int64(head[0]) | Int64(head[1]) << 8 | Int64(head[2]) << 16 | Int64(head[3]) << 24 == size {
            return .metadata(file)
        }
        throw EFSError(
            .notExportFormat,
            "\(file) is neither a Windows raw stream (ROBS) nor $EFS metadata (for an ntfs-3g efs_raw file give --efsinfo EFSFILE)"
        )
    }

    // MARK: - Reading

    /// One record of the input, in order: the `$EFS` first, then each stream's header and its segments.
    enum Record {
        case metadata([UInt8])
        case stream(RawStreamKind, flag: UInt32)
        case segment(DataSegmentHeader?, payload: [UInt8])
        /// An efs_raw chunk (ntfs-3g form): ciphertext with the 2-byte trailer at the very end.
        case efsRawChunk([UInt8])
    }

    /// Reads the input from the start and calls `body` for each record until it returns false or the input ends.
    /// Memory stays bounded by one read chunk plus one segment.
    func walk(_ body: (Record) throws(EFSError) -> Bool) throws(EFSError) {
        switch self {
        case .metadata(let p):
            _ = try body(.metadata(try FileIO.read(p, maximum: WindowsEFS.maximumMetadataLength + 1)))
        case .ntfs3g(let raw, let info):
            guard try body(.metadata(try FileIO.read(info, maximum: WindowsEFS.maximumMetadataLength + 1))) else {
                return
            }
            guard try body(.stream(.data, flag: 0)) else { return }
            try Self.readChunks(raw) { (chunk) throws(EFSError) in try body(.efsRawChunk(chunk)) }
        case .robs(let p):
            var decoder = WindowsRawObject.makeDecoder()
            var buffer = RawInputBuffer()
            var stop = false
            func step(_ r: RawRecord) throws(EFSError) -> Bool {
                switch r {
                case .header: return true
                case .metadata(let m): return try body(.metadata(m))
                case .stream(let h): return h.kind == .metadata ? true : try body(.stream(h.kind, flag: h.flag))
                case .segment(let h, let payload): return try body(.segment(h, payload: payload))
                }
            }
            try Self.readChunks(p) { (chunk) throws(EFSError) in
                buffer.append(chunk)
                while true {
                    let r: RawRecord?
                    do throws(RawStreamError) { r = try decoder.next(from: &buffer) } catch {
                        throw Self.streamError(error, p)
                    }
                    guard let r else { return true }
                    guard try step(r) else {
                        stop = true
                        return false
                    }
                }
            }
            if !stop {
                do throws(RawStreamError) { try decoder.finish(buffer) } catch { throw Self.streamError(error, p) }
            }
        }
    }

    static func streamError(_ e: RawStreamError, _ p: FilePath) -> EFSError {
        EFSError(.notExportFormat, "\(p): malformed Windows raw stream: \(e.description)", cause: e)
    }

    /// Reads `path` in chunks, passing each to `body` until it returns false.
    static func readChunks(_ path: FilePath, _ body: ([UInt8]) throws(EFSError) -> Bool) throws(EFSError) {
        let fd: FileDescriptor
        do { fd = try Sys.open(path, .readOnly) } catch { throw EFSError.system(error, "cannot open", path) }
        defer { Sys.close(fd) }
        var offset: Int64 = 0
        while true {
            let chunk: [UInt8]
            do { chunk = try Sys.pread(fd, count: readChunk, at: offset) } catch {
                throw EFSError.system(error, "cannot read", path)
            }
            if chunk.isEmpty { return }
            offset += Int64(chunk.count)
            guard try body(chunk) else { return }
        }
    }

    /// The parsed `$EFS` and its bytes (reads no further than the metadata stream).
    public func metadata() throws(EFSError) -> (WindowsEFSMetadata, [UInt8]) {
        var bytes: [UInt8]?
        try walk { (r) throws(EFSError) in
            if case .metadata(let m) = r { bytes = m }
            return false
        }
        guard let bytes else { throw EFSError(.notExportFormat, "\(path): the raw stream has no metadata stream") }
        return (try Self.parseMetadata(bytes, path), bytes)
    }

    static func parseMetadata(_ bytes: [UInt8], _ path: FilePath) throws(EFSError) -> WindowsEFSMetadata {
        do { return try WindowsEFSMetadata.parse(bytes) } catch { throw windowsError(error, path, "$EFS") }
    }

    // MARK: - Inspecting

    /// Reads the input without a key: its metadata and its streams' sizes. Checks the whole structure.
    public func inspect() throws(EFSError) -> WindowsInspection {
        var metadataBytes: [UInt8]?
        var streams: [WindowsInspection.Stream] = []
        var efsRaw: [UInt8] = []
        var efsRawLength: UInt64 = 0
        try walk { (r) throws(EFSError) in
            switch r {
            case .metadata(let m): metadataBytes = m
            case .stream(let kind, let flag): streams.append(WindowsInspection.Stream(kind: kind, flag: flag))
            case .segment(let h, let payload):
                streams[streams.count - 1].segments += 1
                if let h {
                    do throws(FormatError) { _ = try WindowsSegmentDecryptor.blocks(of: h) } catch {
                        throw EFSError(.notExportFormat, "\(path): malformed data segment: \(error.message)", cause: error)
                    }
                    let end = h.startingFileOffset + UInt64(h.bytesWithinStreamSize)
                    streams[streams.count - 1].size = max(streams[streams.count - 1].size, end)
                    if (h.extendedFlags ?? 0) & 1 != 0 { streams[streams.count - 1].sparse = true }
                } else {
                    streams[streams.count - 1].size += UInt64(payload.count)
                }
            case .efsRawChunk(let c):
                // Only the last two bytes (the pad length) matter here.
                efsRawLength += UInt64(c.count)
                efsRaw = Array((efsRaw + c).suffix(NTFS3GEfsRaw.trailerSize))
            }
            return true
        }
        guard let metadataBytes else { throw EFSError(.notExportFormat, "\(path): the raw stream has no metadata stream") }
        let metadata = try Self.parseMetadata(metadataBytes, path)
        if case .ntfs3g(let raw, _) = self {
            guard efsRaw.count == NTFS3GEfsRaw.trailerSize else {
                throw EFSError(.notExportFormat, "\(raw): an efs_raw file holds at least its 2-byte pad length")
            }
            let pad = UInt64(efsRaw[0]) | UInt64(efsRaw[1]) << 8
            let cipherLength = efsRawLength - UInt64(NTFS3GEfsRaw.trailerSize)
            guard cipherLength % UInt64(WindowsEFS.unitSize) == 0, pad < UInt64(WindowsEFS.unitSize),
                cipherLength > 0 || pad == 0
            else {
                throw EFSError(
                    .notExportFormat,
                    "\(raw): malformed efs_raw: \(cipherLength) ciphertext bytes and pad length \(pad) (whole 512-byte units and a pad of 0–511 are needed)"
                )
            }
            streams[0].size = cipherLength - pad
            streams[0].segments = cipherLength > 0 ? 1 : 0
        }
        return WindowsInspection(
            input: self, metadata: metadata, metadataSize: metadataBytes.count, streams: streams)
    }
}

/// What ``WindowsInput/inspect()`` found.
public struct WindowsInspection: Sendable {
    public struct Stream: Sendable, Hashable {
        public var kind: RawStreamKind
        /// MS-EFSR Flag: 0 = encrypted.
        public var flag: UInt32
        public var size: UInt64 = 0
        public var segments = 0
        public var sparse = false

        /// "::$DATA", or the named stream's name.
        public var name: String {
            switch kind {
            case .data: "::$DATA"
            case .named(let n): n
            case .metadata: "$EFS"
            }
        }
    }

    public var input: WindowsInput
    public var metadata: WindowsEFSMetadata
    public var metadataSize: Int
    /// Empty for a bare `$EFS`.
    public var streams: [Stream]

    /// `metadata version 1 (EFS_Version 2)`.
    public var formatDescription: String { WindowsMetadataFormat.version1(efsVersion: metadata.efsVersion).description }
}

/// Maps an error of the Windows core to the EFS error codes, naming what was being read.
func windowsError(_ e: FormatError, _ path: FilePath?, _ what: String) -> EFSError {
    let at = path.map { "\($0): " } ?? ""
    switch e.code {
    case .unsupportedVersion: return EFSError(.unsupportedVersion, "\(at)\(e.message)", cause: e)
    case .unsupportedAlgorithm: return EFSError(.notSupported, "\(at)\(e.message)", cause: e)
    case .authenticationFailed: return EFSError(.authenticationFailed, "\(at)\(e.message)", cause: e)
    default: return EFSError(.corrupt, "\(at)malformed \(what): \(e.message)", cause: e)
    }
}

extension WindowsKeyEntry {
    /// "alice(alice@HOST)", or the thumbprint when the entry has no display name.
    public var displayName: String { publicKeyInfo.displayName ?? "(no name)" }

    /// The thumbprint in the grouped hex style of `cipher /c` (``Thumbprint/description``), whatever its length.
    public var thumbprintDescription: String { Hex.grouped(publicKeyInfo.thumbprint) }
}
