/**
 * `viking exec` on the host that runs the replica: a Docker exec in the
 * replica's container, its streams hijacked for the websocket session.
 */
import type { Duplex } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import type Docker from 'dockerode';
import type { DockerSession } from './session.js';

export interface ExecOptions {
  cmd: string[];
  tty: boolean;
  stdin: boolean;
}

export async function startExec(docker: Docker, containerId: string, o: ExecOptions): Promise<DockerSession> {
  const exec = await docker.getContainer(containerId).exec({
    Cmd: o.cmd,
    AttachStdin: o.stdin,
    AttachStdout: true,
    AttachStderr: true,
    Tty: o.tty,
  });
  const stream = (await exec.start({ hijack: true, stdin: o.stdin, Tty: o.tty })) as unknown as Duplex;
  return {
    stream,
    tty: o.tty,
    stdin: o.stdin,
    resize: async (cols, rows) => {
      // Right after start Docker may not have the exec's process yet and refuses the resize: try again briefly.
      for (let attempt = 0; ; attempt++) {
        try {
          await exec.resize({ h: rows, w: cols });
          return;
        } catch (err) {
          if (attempt >= 20) throw err;
          await sleep(50);
        }
      }
    },
    async exitCode() {
      // The stream can end a moment before Docker records the exit code.
      for (let i = 0; i < 100; i++) {
        const info = (await exec.inspect()) as { Running: boolean; ExitCode: number | null };
        if (!info.Running && info.ExitCode !== null) return info.ExitCode;
        await sleep(50);
      }
      return -1;
    },
    // With a TTY, closing the stream hangs up the terminal (SIGHUP); without, it closes stdin.
    abandon: async () => {
      stream.destroy();
    },
  };
}
