//! `/proc/cpuinfo` as prometheus/procfs (v0.21) parses it for node_exporter's `--collector.cpu.info`:
//! the x86 and ARM layouts, chosen by the architecture the agent is built for, as procfs
//! chooses by build tags. Values are kept verbatim (procfs does not trim them), and a field
//! procfs parses as a number makes the whole file an error when it is not one.

use crate::gonum;

/// One processor's entry: the fields node_exporter reports.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CpuInfo {
    pub processor: u32,
    pub vendor_id: String,
    pub cpu_family: String,
    pub model: String,
    pub model_name: String,
    pub stepping: String,
    pub microcode: String,
    pub cpu_mhz: f64,
    pub cache_size: String,
    pub physical_id: String,
    pub core_id: String,
    pub flags: Vec<String>,
    pub bugs: Vec<String>,
}

/// Parses `/proc/cpuinfo` with the layout of the architecture the agent runs on.
pub fn parse(text: &str) -> Result<Vec<CpuInfo>, String> {
    if cfg!(any(target_arch = "arm", target_arch = "aarch64")) {
        parse_arm(text)
    } else if cfg!(any(target_arch = "x86", target_arch = "x86_64")) {
        parse_x86(text)
    } else {
        // procfs has further layouts (s390x, ppc64, mips, riscv64, loong64) that beacon-agent
        // is not built for.
        Err("not implemented for this architecture".into())
    }
}

/// The first line with something other than white space, and the lines after it.
fn first_line<'a>(lines: &mut impl Iterator<Item = &'a str>) -> &'a str {
    lines.find(|l| !l.trim().is_empty()).unwrap_or("")
}

/// A `key: value` line split as procfs does (`strings.SplitN(line, ": ", 2)` and a trimmed
/// key). `None` for lines without `": "`: their key would still hold the colon and so never
/// matches a field procfs knows.
fn field(line: &str) -> Option<(&str, &str)> {
    if !line.contains(':') {
        return None;
    }
    line.split_once(": ").map(|(k, v)| (k.trim(), v))
}

/// Go's `strconv.ParseUint(v, 0, 32)`.
fn uint32(key: &str, v: &str) -> Result<u32, String> {
    gonum::parse_uint(v)
        .and_then(|n| u32::try_from(n).ok())
        .ok_or_else(|| format!("{key}: invalid number {v:?}"))
}

/// Go's `strconv.ParseFloat(v, 64)`.
fn float(key: &str, v: &str) -> Result<f64, String> {
    gonum::parse_float(v).ok_or_else(|| format!("{key}: invalid number {v:?}"))
}

/// The x86 layout (procfs' `parseCPUInfoX86`): one block per processor, each starting with
/// `processor : N`.
pub fn parse_x86(text: &str) -> Result<Vec<CpuInfo>, String> {
    let mut lines = text.lines();
    let first = first_line(&mut lines);
    let bad_first = || format!("cannot parse line: {first:?}");
    if !first.starts_with("processor") || !first.contains(':') {
        return Err(bad_first());
    }
    let (_, v) = field(first).ok_or_else(bad_first)?;
    let mut cpus = vec![CpuInfo {
        processor: uint32("processor", v)?,
        ..CpuInfo::default()
    }];
    for line in lines {
        let Some((key, v)) = field(line) else {
            continue;
        };
        if key == "processor" {
            cpus.push(CpuInfo {
                processor: uint32(key, v)?,
                ..CpuInfo::default()
            });
            continue;
        }
        let cpu = cpus.last_mut().expect("starts with one processor");
        match key {
            "vendor" | "vendor_id" => cpu.vendor_id = v.to_owned(),
            "cpu family" => cpu.cpu_family = v.to_owned(),
            "model" => cpu.model = v.to_owned(),
            "model name" => cpu.model_name = v.to_owned(),
            "stepping" => cpu.stepping = v.to_owned(),
            "microcode" => cpu.microcode = v.to_owned(),
            "cpu MHz" => cpu.cpu_mhz = float(key, v)?,
            "cache size" => cpu.cache_size = v.to_owned(),
            "physical id" => cpu.physical_id = v.to_owned(),
            "core id" => cpu.core_id = v.to_owned(),
            "flags" => cpu.flags = v.split_whitespace().map(str::to_owned).collect(),
            "bugs" => cpu.bugs = v.split_whitespace().map(str::to_owned).collect(),
            // Parsed by procfs into fields node_exporter does not report: only their
            // failure matters.
            "siblings" | "cpu cores" | "cpuid level" | "clflush size" | "cache_alignment" => {
                uint32(key, v)?;
            }
            "bogomips" => {
                float(key, v)?;
            }
            _ => {}
        }
    }
    Ok(cpus)
}

/// The ARM layout (procfs' `parseCPUInfoARM`): either `processor : N` blocks (arm64, newer
/// arm) or an old-style `Processor : <model>` line shared by every processor. The `Features`
/// line (the last one wins) gives every processor its flags.
pub fn parse_arm(text: &str) -> Result<Vec<CpuInfo>, String> {
    let mut lines = text.lines();
    let first = first_line(&mut lines);
    let bad_first = || format!("cannot parse line: {first:?}");
    if !(first.starts_with("processor") || first.starts_with("Processor")) || !first.contains(':') {
        return Err(bad_first());
    }
    let (key, v) = field(first).ok_or_else(bad_first)?;
    let mut common = CpuInfo::default();
    let mut cpus = Vec::new();
    if key == "Processor" {
        common.model_name = v.to_owned();
    } else {
        cpus.push(CpuInfo {
            processor: uint32("processor", v)?,
            ..CpuInfo::default()
        });
    }
    let mut features = None;
    for line in lines {
        let Some((key, v)) = field(line) else {
            continue;
        };
        match key {
            "processor" => cpus.push(CpuInfo {
                processor: uint32(key, v)?,
                ..common.clone()
            }),
            "BogoMIPS" => {
                if cpus.is_empty() {
                    // The old layout has one processor, numbered 0.
                    cpus.push(common.clone());
                }
                float(key, v)?;
            }
            "Features" => features = Some(v),
            "model name" => {
                // procfs indexes processor -1 here and panics; an error is kinder.
                let cpu = cpus
                    .last_mut()
                    .ok_or_else(|| "model name before any processor".to_owned())?;
                cpu.model_name = v.to_owned();
            }
            _ => {}
        }
    }
    if !cpus.is_empty() {
        // procfs indexes the missing Features value and panics; an error is kinder.
        let features = features.ok_or_else(|| "no Features line".to_owned())?;
        let flags: Vec<String> = features.split_whitespace().map(str::to_owned).collect();
        for cpu in &mut cpus {
            cpu.flags.clone_from(&flags);
        }
    }
    Ok(cpus)
}

#[cfg(test)]
mod tests {
    use super::*;

    const X86: &str = "processor\t: 0
vendor_id\t: GenuineIntel
cpu family\t: 6
model\t\t: 142
model name\t: Intel(R) Core(TM) i7-8650U CPU @ 1.90GHz
stepping\t: 10
microcode\t: 0xb4
cpu MHz\t\t: 799.998
cache size\t: 8192 KB
physical id\t: 0
siblings\t: 8
core id\t\t: 0
cpu cores\t: 4
flags\t\t: fpu vme de  pse
bugs\t\t: cpu_meltdown spectre_v1
bogomips\t: 4224.00
power management:

processor\t: 1
vendor_id\t: GenuineIntel
cpu MHz\t\t: 1000
core id\t\t: 1
";

    #[test]
    fn x86_blocks() {
        let cpus = parse_x86(X86).expect("valid cpuinfo");
        assert_eq!(cpus.len(), 2);
        let c = &cpus[0];
        assert_eq!(c.processor, 0);
        assert_eq!(c.vendor_id, "GenuineIntel");
        assert_eq!(c.model, "142");
        assert_eq!(c.model_name, "Intel(R) Core(TM) i7-8650U CPU @ 1.90GHz");
        assert_eq!(c.microcode, "0xb4");
        assert_eq!(c.cpu_mhz, 799.998);
        assert_eq!(c.cache_size, "8192 KB");
        assert_eq!(c.flags, ["fpu", "vme", "de", "pse"]);
        assert_eq!(c.bugs, ["cpu_meltdown", "spectre_v1"]);
        assert_eq!((cpus[1].processor, cpus[1].core_id.as_str()), (1, "1"));
        assert!(cpus[1].flags.is_empty());
    }

    #[test]
    fn x86_numbers_are_checked_as_procfs_does() {
        // ParseUint with base 0: `010` is octal.
        let cpus = parse_x86("\n\nprocessor\t: 010\nsiblings\t: 0x8\n").expect("base 0");
        assert_eq!(cpus[0].processor, 8);
        for bad in [
            "processor\t: x\n",
            "processor\t: 0\nsiblings\t: many\n",
            "processor\t: 0\ncpu MHz\t\t: fast\n",
            "processor\t: 0\nbogomips\t: \n",
            "processor\t: 4294967296\n",
            "vendor_id\t: GenuineIntel\n",
            "processor:0\n",
            "",
        ] {
            assert!(parse_x86(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn arm64_blocks_share_the_last_features_line() {
        let text = "processor\t: 0
BogoMIPS\t: 48.00
Features\t: fp asimd evtstrm
CPU implementer\t: 0x41

processor\t: 1
BogoMIPS\t: 48.00
Features\t: fp asimd evtstrm crc32
";
        let cpus = parse_arm(text).expect("valid cpuinfo");
        assert_eq!(cpus.len(), 2);
        assert_eq!(cpus[1].processor, 1);
        for c in &cpus {
            assert_eq!(c.flags, ["fp", "asimd", "evtstrm", "crc32"]);
            assert!(c.vendor_id.is_empty());
        }
    }

    #[test]
    fn old_arm_layout_names_the_model_once() {
        let text = "Processor\t: ARMv6-compatible processor rev 7 (v6l)
BogoMIPS\t: 697.95
Features\t: swp half thumb fastmult vfp edsp java tls
";
        let cpus = parse_arm(text).expect("valid cpuinfo");
        assert_eq!(cpus.len(), 1);
        assert_eq!(cpus[0].processor, 0);
        assert_eq!(cpus[0].model_name, "ARMv6-compatible processor rev 7 (v6l)");
        assert_eq!(cpus[0].flags.len(), 8);
        assert!(parse_arm("processor\t: 0\nBogoMIPS\t: 1\n").is_err());
        assert!(parse_arm("cpu\t: 0\n").is_err());
    }
}
