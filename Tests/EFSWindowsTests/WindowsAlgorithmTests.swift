// SPDX-License-Identifier: Apache-2.0
// This file is part of swift-efs. See LICENSE for details.

import EFSCore
import Testing

@testable import EFSWindows

@Suite("Windows algorithms")
struct WindowsAlgorithmTests {
    @Test("ALG_IDs, key lengths and weakness")
    func algorithms() {
        #expect(WindowsAlgorithm.aes256.keyLength == 32 && !WindowsAlgorithm.aes256.isWeak)
        #expect(WindowsAlgorithm.tripleDES.keyLength == 24 && WindowsAlgorithm.tripleDES.isWeak)
        #expect(WindowsAlgorithm.desx.keyLength == 16 && WindowsAlgorithm.desx.isWeak)
        #expect(WindowsAlgorithm(rawValue: 0x6601).keyLength == nil)
        #expect(WindowsAlgorithm(rawValue: 0x6601).description.contains("0x6601"))
    }
}
