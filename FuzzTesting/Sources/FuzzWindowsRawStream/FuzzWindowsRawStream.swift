// SPDX-License-Identifier: Apache-2.0
// This file is part of swift-efs. See LICENSE for details.

import EFSCore
import EFSRawStream
import EFSWindows
import FuzzSupport

// Fuzzes the Windows inputs of issue 5: a Windows raw stream (`WindowsRawObject.parse`, which drives
// `RawStreamDecoder` and `WindowsEFSMetadata.parse`) and ntfs-3g's `efs_raw` (`NTFS3GEfsRaw.parse`,
// `EfsRawDecryptor`), with the data decrypted under a fixed FEK.
//
// Input: one mode byte, then the bytes. Bit 0: 0 = ROBS, 1 = efs_raw. Bits 1–2: the algorithm (AES-256, 3DES,
// DESX, AES-256). Bits 4–7: log2 of the largest chunk for the streaming decryptors (0: one byte at a time).
// Invariants (reported as a crash when broken):
// - ROBS: every stream of an accepted object decrypts (the block layout was checked at parse time) to exactly its
//   size, the streaming segment decryptor gives the same bytes, and the object re-encodes (every header field as
//   read) to bytes that parse to the same object;
// - efs_raw: the streaming decryptor, fed in chunks, gives the same plaintext (or the same refusal) as the whole
//   file, and that plaintext is the first `size` bytes of the decrypted ciphertext.

let algorithms: [WindowsAlgorithm] = [.aes256, .tripleDES, .desx, .aes256]

/// The fixed-key cipher of `alg`. Made per input, not cached in a global: LeakSanitizer does not recognise the
/// pointers inside a multi-payload enum (spare bits hold the case), so a global cipher is reported as a leak at exit.
func cipher(_ alg: WindowsAlgorithm) -> WindowsDataCipher {
    try! WindowsDataCipher(
        fek: WindowsFEK(algorithm: alg, key: (0..<alg.keyLength!).map { UInt8(truncatingIfNeeded: $0 &* 37 &+ 11) }))
}

func robs(_ bytes: [UInt8], cipher: WindowsDataCipher) {
    let object: WindowsRawObject
    do {
        object = try WindowsRawObject.parse(bytes)
    } catch {
        Fuzz.note("ROBS refused: \(error)")
        return
    }
    for s in object.streams {
        let plain: [UInt8]
        do {
            plain = try object.decrypt(s, cipher: cipher, maximumSize: 1 << 24)
        } catch {
            Fuzz.check(error.code == .limitExceeded, "an accepted stream does not decrypt: \(error)")
            continue
        }
        Fuzz.check(UInt64(plain.count) == s.size, "decrypted size")
        guard s.isEncrypted else { continue }
        var d = WindowsSegmentDecryptor(cipher: cipher)
        var rebuilt = [UInt8](repeating: 0, count: plain.count)
        for seg in s.segments {
            guard let h = seg.header, let extents = try? d.decrypt(h, payload: seg.payload) else {
                Fuzz.check(false, "the streaming segment decryptor refuses an accepted segment")
                return
            }
            for e in extents { rebuilt.replaceSubrange(Int(e.offset)..<(Int(e.offset) + e.bytes.count), with: e.bytes) }
        }
        Fuzz.check(rebuilt == plain, "streaming and whole decryption differ")
    }
    // Re-encoding may only refuse segments with more data blocks than a 512-byte header holds.
    let encoded: [UInt8]
    do {
        encoded = try object.encode()
    } catch {
        Fuzz.check(error.code == .limitExceeded, "an accepted object does not re-encode: \(error)")
        return
    }
    do {
        let again = try WindowsRawObject.parse(encoded)
        Fuzz.check(
            again.streams == object.streams && again.metadataBytes == object.metadataBytes,
            "re-encoding changed the object")
        Fuzz.check(try again.encode() == encoded, "re-encoding is not canonical")
    } catch {
        Fuzz.check(false, "the re-encoded object is refused: \(error)")
    }
}

func efsRaw(_ bytes: [UInt8], cipher: WindowsDataCipher, chunk: Int) {
    var whole: [UInt8]?
    if let (ciphertext, size) = try? NTFS3GEfsRaw.parse(bytes) {
        guard let plain = try? cipher.decrypt(ciphertext, offset: 0) else {
            Fuzz.check(false, "accepted efs_raw ciphertext does not decrypt")
            return
        }
        Fuzz.check(UInt64(ciphertext.count) - size < 512, "pad length")
        whole = Array(plain.prefix(Int(size)))
    }
    var d = EfsRawDecryptor(cipher: cipher)
    var streamed: [UInt8]? = []
    var i = 0
    repeat {
        let n = min(chunk, bytes.count - i)
        guard let out = try? d.decrypt(bytes[i..<(i + n)]) else {
            streamed = nil
            break
        }
        streamed? += out
        i += n
    } while i < bytes.count
    if streamed != nil {
        if let tail = try? d.finish() { streamed? += tail } else { streamed = nil }
    }
    Fuzz.check(whole == streamed, "efs_raw: whole \(whole?.count ?? -1) bytes vs streamed \(streamed?.count ?? -1)")
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    let input = Array(UnsafeRawBufferPointer(start: start, count: count))
    guard let mode = input.first else { return 0 }
    let bytes = Array(input.dropFirst())
    let c = cipher(algorithms[Int(mode >> 1) & 3])
    if mode & 1 == 0 {
        robs(bytes, cipher: c)
    } else {
        efsRaw(bytes, cipher: c, chunk: 1 << Int(mode >> 4))
    }
    return 0
}

@_cdecl("FuzzWindowsRawStream_main")
public func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> CInt {
    Fuzz.runDriver(argc, argv) { data, size in fuzz(UnsafeRawPointer(data!), size) }
}
