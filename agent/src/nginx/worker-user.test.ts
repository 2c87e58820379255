import test from "ava";
import { chooseWorkerUser } from "./worker-user.js";

const GROUP = "root:x:0:\nnogroup:x:65534:\nwww-data:x:33:\nnginx:x:990:\n";

test("Debian: www-data with its group", (t) => {
  const passwd = "root:x:0:0:root:/root:/bin/bash\nwww-data:x:33:33:www-data:/var/www:/usr/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n";
  t.deepEqual(chooseWorkerUser(passwd, GROUP), { name: "www-data", group: "www-data", uid: 33, gid: 33 });
});

test("RHEL: nginx, before nobody", (t) => {
  const passwd = "nobody:x:65534:65534::/:/sbin/nologin\nnginx:x:990:990:Nginx web server:/var/lib/nginx:/sbin/nologin\n";
  t.deepEqual(chooseWorkerUser(passwd, GROUP), { name: "nginx", group: "nginx", uid: 990, gid: 990 });
});

test("only nobody: its primary group is nogroup, by name", (t) => {
  t.deepEqual(chooseWorkerUser("nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n", GROUP), { name: "nobody", group: "nogroup", uid: 65534, gid: 65534 });
});

test("a candidate that is uid 0 is skipped, and none left is undefined", (t) => {
  t.is(chooseWorkerUser("www-data:x:0:0::/:/bin/sh\n", GROUP), undefined);
  t.is(chooseWorkerUser("root:x:0:0:root:/root:/bin/bash\n", GROUP), undefined);
});

test("a candidate whose primary group is not in /etc/group is skipped (nginx takes the group by name)", (t) => {
  const passwd = "www-data:x:33:4242::/:/bin/sh\nnobody:x:65534:65534::/:/bin/sh\n";
  t.deepEqual(chooseWorkerUser(passwd, GROUP), { name: "nobody", group: "nogroup", uid: 65534, gid: 65534 });
});
