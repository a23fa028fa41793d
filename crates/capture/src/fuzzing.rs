//! Entry points shared by the cargo-fuzz targets (`fuzz/`) and the stable
//! test that replays their corpus (`tests/fuzz_corpus.rs`): whatever bytes
//! come in, these must return without panicking.

use crate::analysis::Analyzer;
use crate::decode::{self, linktype};
use crate::filter;
use crate::pcap::Reader;
use crate::view::json;
use crate::view::line::{LineOptions, LineWriter};

/// Decode `data` as one frame of every supported link type (the first byte
/// picks which one first), analyse it and render it as a line and as JSON.
pub fn decode_frame(data: &[u8]) {
    const LINKS: [u32; 18] = [
        linktype::ETHERNET,
        linktype::LINUX_SLL,
        linktype::LINUX_SLL2,
        linktype::RAW,
        linktype::IPV4,
        linktype::IPV6,
        linktype::NULL,
        linktype::LOOP,
        linktype::FDDI,
        linktype::IEEE802_11,
        linktype::IEEE802_11_RADIOTAP,
        linktype::PPP,
        linktype::C_HDLC,
        linktype::ARCNET,
        linktype::ARCNET_LINUX,
        linktype::NFLOG,
        linktype::IPOIB,
        linktype::PPP_HDLC,
    ];
    let mut an = Analyzer::new();
    let mut reasm = crate::reasm::Reassembler::new();
    let mut lw = LineWriter::new(LineOptions::default());
    let mut sink = std::io::sink();
    let start = data.first().map_or(0, |b| *b as usize % LINKS.len());
    for (i, off) in (0..LINKS.len()).enumerate() {
        let link = LINKS[(start + off) % LINKS.len()];
        let mut p = decode::decode(link, data, i as u64, data.len() as u32);
        reasm.process(&mut p, data);
        let (info, _) = an.process(i as u64 + 1, &p);
        let sampled: Vec<_> = decode::sflow_sampled(&p, data)
            .into_iter()
            .map(|h| (h, an.number_seen(&h)))
            .collect();
        let _ = lw.write(&mut sink, i as u64 + 1, &p, &info, None);
        let mut j = json::packet(i as u64 + 1, &p, &info, None);
        j.sampled = json::sampled(&sampled);
        let _ = serde_json::to_vec(&j);
        let f = filter::parse(&[
            "tcp or port 53 or host 10.0.0.1 or (vlan and tcp[13] & 2 != 0) \
             or geneve and tcp port 80"
                .to_string(),
        ]);
        if let Ok(f) = f {
            let _ = filter::FileMatcher::new(f).matches(link, data, data.len() as u32);
        }
    }
}

/// Read `data` as a capture file, decoding and analysing every record, and
/// render the conversation table.
pub fn read_file(data: &[u8]) {
    let Ok(mut r) = Reader::new(data) else {
        return;
    };
    let mut an = Analyzer::new();
    let mut reasm = crate::reasm::Reassembler::new();
    let mut frame = 0u64;
    while let Ok(Some(rec)) = r.next_record() {
        frame += 1;
        let mut p = decode::decode(rec.link, rec.data, rec.ts_ns, rec.wire_len);
        reasm.process(&mut p, rec.data);
        let _ = an.process(frame, &p);
        for h in decode::sflow_sampled(&p, rec.data) {
            let _ = an.number_seen(&h);
        }
        if frame > 100_000 {
            break;
        }
    }
    let mut sink = std::io::sink();
    let all: Vec<_> = an.conversations().iter().collect();
    let _ = crate::view::conv::write_table(&mut sink, &all, &|_| None, false);
}

/// Parse `data` (as UTF-8, lossy) as filter words and, when it parses,
/// compile it for every linkage.
pub fn filter_expr(data: &[u8]) {
    let s = String::from_utf8_lossy(data);
    let words: Vec<String> = s.split_whitespace().map(str::to_string).collect();
    if let Ok(f) = filter::parse(&words) {
        for l in [
            filter::Linkage::Ethernet,
            filter::Linkage::EthernetLive,
            filter::Linkage::Cooked,
            filter::Linkage::RawIp,
            filter::Linkage::NetworkOnly,
        ] {
            if let Ok(prog) = f.compile(l, 65535) {
                let _ = filter::bpf::run(&prog, data, &filter::bpf::Meta::default());
            }
        }
    }
}
