// Which attach method a program needs when its section does not name a
// target libbpf can attach to by itself (bpf_program__attach() answers
// EOPNOTSUPP for those, with no word on what to do instead). Sections as
// libbpf 1.1 to 1.7 know them (section_defs in libbpf.c).
import type { ProgramType } from '../types.js';

const sec = (section: string): string => `SEC(${JSON.stringify(section)})`;

/**
 * What to call instead of attach() for a program of this section, or
 * undefined where libbpf attaches by the section alone (or the section is
 * not one we know: the caller then says so in general terms).
 */
export function targetHint(section: string, type: ProgramType): string | undefined {
  const [kind = '', target = ''] = section.split('/');
  const base = kind.replace(/\.s$/, ''); // sleepable variants attach as the others
  const s = sec(section);
  switch (base) {
    case 'tc':
    case 'classifier':
    case 'tcx':
      if (target === 'ingress' || target === 'egress') {
        return `${s} needs an interface: use prog.attachTc(ifname, { direction: '${target}' })`;
      }
      return `${s} needs an interface and a direction: use prog.attachTc(ifname, { direction: 'ingress' | 'egress' })`;
    case 'action':
      return `${s} is a tc action (sched_act), added with tc(8) 'action bpf'; this library has no method for actions: use SEC("tc") and prog.attachTc() for a filter`;
    case 'netkit':
      return `${s} runs on a netkit device, which this library has no method for yet`;
    case 'xdp':
    case 'xdp.frags':
      if (target === 'devmap' || target === 'cpumap') {
        return `${s} runs from a ${target} entry: store the program's fd (prog.fd) in the map's value; it is not attached on its own`;
      }
      return `${s} needs an interface: use prog.attachXdp(ifname)`;
    case 'socket':
      return `${s} is a socket filter: use prog.attachSocket(socket) (a Node socket, an fd, or openRawSocket(ifname))`;
    case 'sk_skb':
    case 'sk_msg':
      return `${s} runs on a sockmap or sockhash: use prog.attachSockmap(map)`;
    case 'sk_reuseport':
      return `${s} is attached to a SO_REUSEPORT socket group with setsockopt(SO_ATTACH_REUSEPORT_EBPF), which this library has no method for yet`;
    case 'perf_event':
      return `${s} needs a perf event: use prog.attachPerfEvent({ type, config, sampleFreq | samplePeriod })`;
    case 'cgroup_skb':
    case 'sockops':
      return `${s} needs a cgroup: use prog.attachCgroup(path)`;
    case 'cgroup':
      if (target === 'skb') {
        return `${s} needs a cgroup and a direction: use prog.attachCgroup(path, { type: 'cgroup_inet_ingress' | 'cgroup_inet_egress' })`;
      }
      return `${s} needs a cgroup: use prog.attachCgroup(path)`;
    case 'lsm_cgroup':
      return `${s} needs a cgroup: use prog.attachCgroup(path)`;
    case 'struct_ops':
      return `${s} is a member of a struct_ops map: register the map with map.attachStructOps() (obj.attach() does it)`;
    case 'flow_dissector':
    case 'sk_lookup':
      return `${s} needs a network namespace: use prog.attachNetns(path) (default: this process's)`;
    case 'kprobe':
    case 'kretprobe':
      if (target === '') {
        return `${s} names no kernel function: use prog.attachKprobe(func${base === 'kretprobe' ? ', { retprobe: true }' : ''})`;
      }
      return undefined;
    case 'ksyscall':
    case 'kretsyscall':
      if (target === '') {
        return `${s} names no system call: use prog.attachKsyscall(name${base === 'kretsyscall' ? ', { retprobe: true }' : ''})`;
      }
      return undefined;
    case 'kprobe.multi':
    case 'kretprobe.multi':
      if (target === '') {
        return `${s} names no kernel functions: use prog.attachKprobeMulti({ pattern } | { symbols }${base === 'kretprobe.multi' ? ', retprobe: true' : ''})`;
      }
      return undefined;
    case 'uprobe':
    case 'uretprobe':
      if (target === '') {
        return `${s} names no binary: use prog.attachUprobe({ binary, symbol${base === 'uretprobe' ? ', retprobe: true' : ''} })`;
      }
      return undefined;
    case 'uprobe.multi':
    case 'uretprobe.multi':
    case 'uprobe.session':
    case 'kprobe.session':
      if (target === '') return `${s} names no target, and this library has no method for ${base} links yet`;
      return undefined;
    case 'usdt':
      if (target === '') return `${s} names no probe: use prog.attachUsdt({ binary, provider, name })`;
      return undefined;
    case 'tracepoint':
    case 'tp':
      if (target === '') return `${s} names no tracepoint: use prog.attachTracepoint(category, name)`;
      return undefined;
    case 'raw_tracepoint':
    case 'raw_tp':
    case 'raw_tracepoint.w':
    case 'raw_tp.w':
      if (target === '') return `${s} names no tracepoint: use prog.attachRawTracepoint(name)`;
      return undefined;
    case 'syscall':
      return `${s} is not attached anywhere: run it with prog.testRun({ ctx })`;
    case 'lwt_in':
    case 'lwt_out':
    case 'lwt_xmit':
    case 'lwt_seg6local':
      return `${s} runs on a route (ip route ... encap bpf), which this library has no method for`;
    case 'lirc_mode2':
      return `${s} is attached to a LIRC device with bpf_prog_attach, which this library has no method for yet`;
    case 'netfilter':
      return `${s} needs a netfilter hook: use prog.attachNetfilter({ pf: 'ipv4' | 'ipv6', hooknum: 'local_in' | ..., priority })`;
    case 'freplace':
      return `${s} replaces a function of another program, which this library has no method for yet`;
    default:
      break;
  }
  // Sections libbpf does not know, typed by the caller (prog.type = ...).
  switch (type) {
    case 'sched_cls':
      return `${s} (sched_cls) needs an interface: use prog.attachTc(ifname, { direction })`;
    case 'xdp':
      return `${s} (xdp) needs an interface: use prog.attachXdp(ifname)`;
    case 'socket_filter':
      return `${s} (socket_filter) is a socket filter: use prog.attachSocket(socket)`;
    case 'perf_event':
      return `${s} (perf_event) needs a perf event: use prog.attachPerfEvent({ type, config, sampleFreq })`;
    default:
      return undefined;
  }
}

/** The hint for any section: targetHint's, or the general one. */
export function attachHint(section: string, type: ProgramType): string {
  return targetHint(section, type)
    ?? `libbpf cannot attach ${sec(section)} (${type}) by its section alone: use the attach method of its hook`;
}
