// SPDX-License-Identifier: Apache-2.0
// This file is part of swift-efs. See LICENSE for details.

import ArgumentParser
import EFS
import EFSRawStream
import EFSSystem
import Foundation
import SystemPackage

struct RawInspectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect",
        abstract: "Describe a raw stream: its streams, segments, users and recovery agents. No key is used."
    )

    @Argument(help: "The raw stream ('-' for standard input).")
    var stream: String

    @Flag(help: "List every data segment.")
    var segments = false

    @Flag(help: "Print JSON.")
    var json = false

    func run() throws {
        try CLI.run {
            let report = try RawInspection.inspect(stream)
            if json {
                print(try CLI.json(report.json))
            } else {
                print(report.text(segments: segments), terminator: "")
            }
        }
    }
}

/// Walks a raw stream with the decoder and collects what it says.
struct RawInspection {
    struct Stream {
        var name: String
        var flag: UInt32
        var segments: [(offset: UInt64, plaintext: UInt32, stored: UInt64, sparse: Bool)] = []
        var bytes: UInt64 = 0
    }
    var total: UInt64 = 0
    var streams: [Stream] = []
    var metadata: RawMetadata?

    static func inspect(_ name: String) throws -> RawInspection {
        let fd: FileDescriptor
        if name == "-" { fd = .standardInput } else {
            do { fd = try Sys.open(FilePath(name), .readOnly) } catch {
                throw EFSError(error == .noSuchFileOrDirectory ? .fileNotFound : .accessDenied, "\(name): \(error)")
            }
        }
        defer { if name != "-" { Sys.close(fd) } }
        var r = RawInspection()
        var decoder = RawStreamDecoder()
        var buffer = RawInputBuffer()
        do {
            while true {
                let chunk = try Sys.read(fd, count: 1 << 16)
                if chunk.isEmpty { break }
                r.total += UInt64(chunk.count)
                buffer.append(chunk)
                while let rec = try decoder.next(from: &buffer) { try r.add(rec) }
            }
            try decoder.finish(buffer)
        } catch let e as RawStreamError {
            throw EFSError(.notExportFormat, "\(name): \(e)", cause: e)
        } catch let e as Errno {
            throw EFSError(.ioError, "\(name): \(e)")
        }
        return r
    }

    mutating func add(_ rec: RawRecord) throws {
        switch rec {
        case .header: break
        case .stream(let h):
            let n: String
            switch h.kind {
            case .metadata: n = "metadata (0x1910)"
            case .data: n = "::$DATA"
            case .named(let s): n = ":\(s):$DATA"
            }
            streams.append(Stream(name: n, flag: h.flag))
        case .metadata(let bytes):
            do { metadata = try RawMetadata(decoding: bytes) } catch {
                throw EFSError(.notExportFormat, "the metadata stream is not swift-efs metadata: \(error.message)")
            }
            streams[streams.count - 1].bytes = UInt64(bytes.count)
        case .segment(let h, let payload):
            streams[streams.count - 1].bytes += UInt64(payload.count)
            if let h {
                streams[streams.count - 1].segments.append((h.startingFileOffset, h.bytesWithinStreamSize, UInt64(payload.count), (h.extendedFlags ?? 0) & 1 != 0))
            }
        }
    }

    func text(segments all: Bool) -> String {
        var out = "raw stream: \(total) bytes, \(streams.count) streams\n"
        if let m = metadata {
            out += "file id: \(m.header.fileID)\n"
            out += "size (claimed): \(m.claimedPlaintextSize) bytes\(m.claimsSparse ? ", sparse" : "")\n"
            out += "users (DDF):\n"
            for u in m.metadata.users { out += "  \(u.displayName)  \(u.thumbprint)  [\(u.algorithm)]\n" }
            out += "recovery agents (DRF):\n"
            if m.metadata.recoveryAgents.isEmpty { out += "  none\n" }
            for a in m.metadata.recoveryAgents { out += "  \(a.displayName)  \(a.thumbprint)  [\(a.algorithm)]\n" }
        }
        out += "streams:\n"
        for s in streams {
            out += "  \(s.name)  flag \(s.flag)  \(s.bytes) bytes  \(s.segments.count) segment\(s.segments.count == 1 ? "" : "s")\n"
            if all {
                for g in s.segments { out += "    offset \(g.offset)  plaintext \(g.plaintext)  stored \(g.stored)\(g.sparse ? "  sparse" : "")\n" }
            }
        }
        return out
    }

    var json: [String: Any] {
        var o: [String: Any] = ["bytes": total]
        if let m = metadata {
            func e(_ k: KeyEntry) -> [String: Any] { ["name": k.displayName, "thumbprint": k.thumbprint.hex, "algorithm": k.algorithm.description] }
            o["fileID"] = m.header.fileID.description
            o["claimedSize"] = m.claimedPlaintextSize
            o["users"] = m.metadata.users.map(e)
            o["recoveryAgents"] = m.metadata.recoveryAgents.map(e)
        }
        o["streams"] = streams.map { s in
            ["name": s.name, "flag": s.flag, "bytes": s.bytes,
             "segments": s.segments.map { ["offset": $0.offset, "plaintext": $0.plaintext, "stored": $0.stored, "sparse": $0.sparse] }] as [String: Any]
        }
        return o
    }
}
